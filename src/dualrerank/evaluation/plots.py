"""Plots of the evaluation (PNG): utility vs latency (the Pareto picture) and Best-of-N utility vs N."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: files only
import matplotlib.pyplot as plt
import matplotlib.ticker


def _utility_key(report: dict[str, Any]) -> tuple[str, str]:
    if report["oracle"].get("utility") is not None:
        return "true_utility", "true utility (watch-minutes)"
    return "heldout_evaluator_utility", "held-out evaluator utility"


def utility_vs_latency(report: dict[str, Any], path: Path) -> Path:
    key, label = _utility_key(report)
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, row in report["policies"].items():
        if row.get(key) is None or row.get("latency_ms_p50") is None:
            continue
        family = "best_of_n" if "_bon" in name else name.split("_")[0]
        marker = {"upstream": "s", "score": "s", "ar": "^", "nar": "o", "best_of_n": "D"}.get(family, "o")
        ax.scatter(row["latency_ms_p50"], row[key], marker=marker, s=45)
        ax.annotate(name, (row["latency_ms_p50"], row[key]), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if report["oracle"].get("utility") is not None and key == "true_utility":
        ax.axhline(report["oracle"]["utility"], ls="--", c="grey", lw=1, label=f"oracle ({report['oracle']['method']})")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("latency p50, ms per request (in-process, batch 1, log scale)")
    ax.set_ylabel(label)
    ax.set_title("Utility vs latency on held-out requests")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def best_of_n(report: dict[str, Any], path: Path) -> Path | None:
    rows = {int(m.group(1)): r for n, r in report["policies"].items() if (m := re.search(r"_bon(\d+)$", n))}
    if not rows:
        return None
    ns = sorted(rows)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for key, label in (
        ("true_utility", "true utility"),
        ("evaluator_utility", "training evaluator (its judge)"),
        ("heldout_evaluator_utility", "held-out evaluator"),
    ):
        ys = [rows[n].get(key) for n in ns]
        if all(y is not None for y in ys):
            ax.plot(ns, ys, marker="o", label=label)
    ar = report["policies"].get("ar_greedy", {}).get("true_utility")
    if ar is not None:
        ax.axhline(ar, ls=":", c="k", lw=1, label="AR teacher greedy (true)")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("N (lists sampled per request, greedy included)")
    ax.set_ylabel("utility (watch-minutes)")
    ax.set_title("Best-of-N: utility vs N")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def headroom_vs_strength(sweep: dict[str, Any], path: Path) -> Path:
    """Left: the oracle's headroom over score-and-sort and over sorting by the true item value (the part
    only list-wise modelling can reach). Right: the share of the headroom each policy captures."""
    res = sweep["results"]
    xs = [r["strength"] for r in res]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    sns = [r["true_utility"].get("score_and_sort") for r in res]
    left.plot(xs, [(r["oracle"] - s) / s for r, s in zip(res, sns)], marker="o", label="oracle over score-and-sort")
    left.plot(
        xs,
        [(r["oracle"] - r["item_value_sort"]) / r["item_value_sort"] for r in res],
        marker="s",
        label="oracle over sort by true item value",
    )
    left.set_xlabel("dependency strength (x default)")
    left.set_ylabel("relative headroom")
    left.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    left.legend(fontsize=8)
    left.grid(alpha=0.3)
    names = sorted({n for r in res for n in r["headroom_captured"] if n not in ("upstream", "score_and_sort")})
    for name in names:
        ys = [r["headroom_captured"].get(name) for r in res]
        if all(y is not None for y in ys):
            right.plot(xs, ys, marker="o", label=name)
    right.axhline(0, c="grey", lw=1)
    right.set_xlabel("dependency strength (x default)")
    right.set_ylabel("headroom captured")
    right.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    right.legend(fontsize=7)
    right.grid(alpha=0.3)
    fig.suptitle("Where generative reranking pays off")
    return _save(fig, path)
