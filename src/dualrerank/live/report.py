"""The live loop's report: totals read back from the log store, and the plot of the rounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dualrerank.config.live import LiveConfig
from dualrerank.data import schema as S
from dualrerank.live.logstore import PARTITION_FILE, LogStore

COLUMNS = [S.REQUEST_ID, S.ITEM_ID, S.LOGGED_POSITION]


def assemble(state: dict[str, Any], cfg: LiveConfig, store: LogStore, first_id: int, page_len: int) -> dict[str, Any]:
    """``live.json`` from the loop's state: a row per round and arm (with the round's promotion and seconds), the
    store's totals, each round's phase seconds, gate verdicts and swaps, and validation outcome. ``first_id``: the
    first live request id (round ``r``'s ids follow from it)."""
    rows = []
    for _, rs in sorted(state["rounds"].items(), key=lambda kv: int(kv[0])):
        for row in rs.get("rows", []):
            learned = rs.get("learned", {}).get(row["arm"], {})
            seconds = round(sum(rs["seconds"].values()), 2)
            rows.append(row | {"promoted": bool(learned.get("promoted", False)), "seconds": seconds})
    size = cfg.requests_per_round
    served = {
        int(k): first_id + int(k) * size + np.arange(size) for k, rs in state["rounds"].items() if rs.get("served")
    }
    return {
        "params": cfg.model_dump(mode="json"),
        "drift_round": cfg.drift.round,
        "rounds": rows,
        **totals(store, served, page_len),
        "phase_seconds": {k: rs["seconds"] for k, rs in state["rounds"].items()},
        "learning": {k: rs.get("learned", {}) for k, rs in state["rounds"].items()},
        "validation": {k: rs.get("validation") for k, rs in state["rounds"].items()},
    }


def round_lines(r: int, rs: dict[str, Any]) -> list[str]:
    """The progress lines of a finished round: each arm's figures, then where the round's time went."""
    lines = [
        f"live: round {r} {row['arm']:>7}: served true utility {row['served_true_utility']:.4f} "
        f"± {row['served_true_utility_ci95']:.4f}, vs control {row['served_gain_vs_control']:+.4f} "
        f"± {row['served_gain_vs_control_ci95']:.4f}, offline headroom {row['offline_headroom_captured']:.3f}, "
        f"same page as control {row.get('same_page_as_control', float('nan')):.0%}, failed {row['failed_requests']}"
        for row in rs.get("rows", [])
    ]
    seconds = json.dumps({k: round(v, 1) for k, v in rs["seconds"].items()})
    return [*lines, f"live: round {r} took {sum(rs['seconds'].values()):.0f} s {seconds}"]


def totals(store: LogStore, served: dict[int, np.ndarray], page_len: int) -> dict[str, int]:
    """``lost_impressions``: slots of the pages of ``served`` rounds' requests (ids per round) missing from the
    store (a missing request loses all ``page_len``); ``duplicated_impressions``: shown (request, item) pairs
    logged more than once. Both read the store itself, quarantined partitions included (they were served)."""
    files = sorted(store.root.glob(f"round=*/{PARTITION_FILE}")) + sorted(
        store.root.glob(f"_quarantine/round=*/{PARTITION_FILE}")
    )
    parts = [pd.read_parquet(f, columns=COLUMNS) for f in files]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    shown = table[table[S.LOGGED_POSITION].notna()]
    ids = shown[S.REQUEST_ID].astype(str)
    per_request = ids.value_counts()
    expected = {str(i) for ids_ in served.values() for i in ids_}
    found = per_request.reindex(sorted(expected), fill_value=0)
    lost = int(np.maximum(page_len - found.to_numpy(), 0).sum())
    duplicated = int(shown.assign(_id=ids).duplicated(["_id", S.ITEM_ID]).sum())
    return {"lost_impressions": lost, "duplicated_impressions": duplicated, "impressions_in_store": len(shown)}


def plot_live(report: dict[str, Any], path: Path) -> Path:
    """Per round and arm: served true utility, the gain over control (95% intervals) and the offline headroom
    captured, with the drift marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = pd.DataFrame(report["rounds"])
    panels = (
        ("served_true_utility", "served true utility (95% CI)"),
        ("served_gain_vs_control", "served gain over control (95% CI)"),
        ("offline_headroom_captured", "offline headroom captured (test split)"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, (column, title) in zip(axes, panels, strict=True):
        for arm, part in rows.groupby("arm", sort=False) if len(rows) else ():
            error = part.get(f"{column}_ci95")
            ax.errorbar(part["round"], part[column], yerr=error, marker="o", capsize=3, label=str(arm))
        if column == "served_gain_vs_control":
            ax.axhline(0.0, color="black", linewidth=0.8)
        if report.get("drift_round") is not None:
            ax.axvline(report["drift_round"] - 0.5, color="grey", linestyle="--", label="drift")
        ax.set_xlabel("round")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[-1].legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


ROW_COLUMNS = (
    ("round", "{}"),
    ("arm", "{}"),
    ("requests", "{}"),
    ("served_true_utility", "{:.4f}"),
    ("served_true_utility_ci95", "±{:.4f}"),
    ("served_gain_vs_control", "{:+.4f}"),
    ("served_gain_vs_control_ci95", "±{:.4f}"),
    ("same_page_as_control", "{:.0%}"),
    ("logged_reward", "{:.4f}"),
    ("offline_headroom_captured", "{:.3f}"),
    ("version", "{}"),
    ("promoted", "{}"),
    ("failed_requests", "{}"),
    ("seconds", "{:.0f}"),
)


def markdown_table(report: dict[str, Any]) -> str:
    """The rows of ``live.json`` as a markdown table, with the totals under it."""
    head = "| " + " | ".join(name for name, _ in ROW_COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(ROW_COLUMNS)]
    for row in report["rounds"]:
        cells = (fmt.format(row[name]) if row.get(name) is not None else "-" for name, fmt in ROW_COLUMNS)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"lost impressions: {report['lost_impressions']}; duplicated: {report['duplicated_impressions']}")
    if report.get("drift_round") is not None:
        lines.append(f"the world drifts from round {report['drift_round']} on")
    return "\n".join(lines)
