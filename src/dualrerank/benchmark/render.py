"""``dualrerank bench results``: ``docs/results.md`` rendered from ``data/reports/benchmark/results.json``."""

from __future__ import annotations

import argparse
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dualrerank.benchmark.common import BenchPaths, read_json


def fmt(x: Any, digits: int = 4) -> str:
    """A number with ``digits`` decimals, an interval dict as ``mean [low, high]``, None as n/a."""
    if x is None:
        return "n/a"
    if isinstance(x, dict) and "mean" in x:
        low, high = x.get("ci_low", float("nan")), x.get("ci_high", float("nan"))
        return f"{x['mean']:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def header(r: dict[str, Any]) -> list[str]:
    commit = (r.get("commit") or "unknown")[:12] + (" (uncommitted changes)" if r.get("dirty") else "")
    lines = [
        "# Benchmark results",
        "",
        "Rendered by `dualrerank bench results` from `data/reports/benchmark/results.json`,",
    ]
    lines += [f"benchmark run at commit `{commit}` on {r.get('date', 'n/a')} (`make benchmark`).", ""]
    lines += provenance(r)
    lines += [
        "True utility comes from the simulated world and is reported only: every choice (learning rates) was made"
    ]
    lines += ["on validation by the held-out evaluator.", ""]
    if r.get("missing"):
        lines += [f"Reports not found: {', '.join(r['missing'])}.", ""]
    return lines


def _commit(run: dict[str, Any] | None) -> str:
    if not run or not run.get("commit"):
        return "commit not recorded"
    dirty = " (uncommitted changes)" if run.get("dirty") else ""
    return f"commit `{run['commit'][:12]}`{dirty}, {run.get('date', 'n/a')}"


def provenance(r: dict[str, Any]) -> list[str]:
    """Which run each report comes from, when they are not all from one (a study rerun on its own)."""
    by_run: dict[str, list[str]] = {}
    for name, run in (r.get("runs") or {}).items():
        by_run.setdefault(_commit(run), []).append(name)
    if len(by_run) < 2:
        return []
    lines = ["The reports come from more than one run:", ""]
    lines += [f"- {', '.join(names)}: {commit}" for commit, names in by_run.items()]
    return [*lines, ""]


def selection(r: dict[str, Any]) -> list[str]:
    s = r["selection"]
    lines = ["## Fine-tuning: learning rate chosen on validation", "", f"Rule: `{s['rule']}`.", ""]
    lines += [
        "| method | lr | val. evaluator utility | val. held-out evaluator utility | chosen |",
        "|---|---|---|---|---|",
    ]
    for m, rows in s["grid"].items():
        for row in rows:
            mark = "yes" if row["lr"] == s["chosen_lr"].get(m) else ""
            cells = [m, f"{row['lr']:g}", fmt(row["val_evaluator_utility"]), fmt(row["val_heldout_evaluator_utility"])]
            lines.append("| " + " | ".join([*cells, mark]) + " |")
    return [*lines, ""]


def finetune(r: dict[str, Any]) -> list[str]:
    lines = ["## Fine-tuning: test gains over NAR+KD (95% intervals, paired)", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in r["finetune"].items()]
    return [*lines, ""]


def drift(r: dict[str, Any]) -> list[str]:
    lines = ["## LDRO vs GRPO under reward drift", "", "| verdict | value |", "|---|---|"]
    for k, v in r["drift"].items():
        if isinstance(v, dict) and "ratio" in v:
            v = f"{v['ratio']:.2f} [{v.get('ci_low', float('nan')):.2f}, {v.get('ci_high', float('nan')):.2f}]"
        lines.append(f"| {k} | {fmt(v)} |")
    return [*lines, "", "![drift](results/drift.png)", ""]


def policies(r: dict[str, Any]) -> list[str]:
    lines = [
        "## Policies on the test requests",
        "",
        "| policy | true utility | headroom captured | held-out evaluator |",
    ]
    lines.append("|---|---|---|---|")
    for name, row in r["policies"].items():
        cells = [fmt(row.get(k)) for k in ("true_utility", "headroom_captured", "heldout_evaluator_utility")]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    oracle = (r.get("oracle") or {}).get("utility")
    lines += [
        "",
        f"Oracle utility: {fmt(oracle)}.",
        "",
        "![best of n](results/best_of_n_curve.png)",
        "",
    ]
    return lines


def best_of_n(r: dict[str, Any]) -> list[str]:
    lines = ["## Best-of-N: true utility as N grows (the released generator and judge)", ""]
    lines += ["| N | true utility |", "|---|---|", *[f"| {n[2:]} | {fmt(u)} |" for n, u in r["best_of_n"].items()]]
    return [*lines, ""]


def diagnostics(r: dict[str, Any]) -> list[str]:
    d = r["diagnostics"]
    lines = ["## Diagnostics: students against the AR teacher's greedy lists", ""]
    if d.get("student"):
        lines += [
            f"Headline ({d['student']}): PTAR {fmt(d.get('ptar'), 3)}, PTAR in the viewport "
            f"{fmt(d.get('ptar_viewport'), 3)}, collapse rate {fmt(d.get('collapse_rate'), 3)}.",
            "",
        ]
    lines += [
        f"The teacher's entropy-consistency gap (ECG): {fmt(d.get('ecg'), 3)}.",
        "",
        "| student | PTAR | PTAR viewport | exact list | set overlap | collapse rate | collapse share |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = ("ptar", "ptar_viewport", "exact_agreement", "set_overlap", "collapse_rate", "collapse_share")
    for name, row in (d.get("by_student") or {}).items():
        lines.append(f"| {name} | " + " | ".join(fmt(row.get(k), 3) for k in keys) + " |")
    return [*lines, ""]


def judge_audit(r: dict[str, Any]) -> list[str]:
    a = r["judge_audit"]
    lines = [
        "## Judge audit: the released judge on the released Best-of-N's own lists",
        "",
        f"{a.get('n_requests')} test requests, {a.get('n_lists')} lists each (generator {a.get('generator')}); "
        f"agreement of the two evaluators within a request: {fmt(a.get('agreement_within_request'), 3)}.",
        "",
        "| judge | Spearman with the truth within a request | chosen list's true utility | vs the released judge |",
        "|---|---|---|---|",
    ]
    spearman, chosen = a.get("spearman_within_request") or {}, a.get("selected_true_utility") or {}
    for name in dict.fromkeys([*chosen, *spearman]):
        pick = chosen.get(name) or {}
        cells = [fmt(spearman.get(name), 3), fmt(pick.get("mean")), fmt(pick.get("gain_vs_released"))]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    parts = a.get("by_dependency") or {}
    if parts:
        judges = [k for k in next(iter(parts.values())) if k not in ("within_request_std", "spearman_with_truth")]
        lines += [
            "",
            "What each judge sees of a page: its Spearman within a request with each part of the true utility (what "
            "a dependency adds; `item_values`: the utility with every dependency off).",
            "",
            "| part | spread within a request | Spearman with the truth | " + " | ".join(judges) + " |",
            "|---" * (len(judges) + 3) + "|",
        ]
        for name, row in parts.items():
            cells = [fmt(row.get("within_request_std")), fmt(row.get("spearman_with_truth"), 3)]
            lines.append(f"| {name} | " + " | ".join([*cells, *(fmt(row.get(j), 3) for j in judges)]) + " |")
    return [*lines, ""]


def sweep(r: dict[str, Any]) -> list[str]:
    rows = r["sweep"]
    names = list(dict.fromkeys(n for row in rows for n in row["headroom_captured"]))
    lines = ["## Headroom vs dependency strength (small worlds)", ""]
    lines += ["| strength | oracle | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
    for row in rows:
        cells = [fmt(row["headroom_captured"].get(n), 3) for n in names]
        lines.append(f"| {row['strength']:g} | {fmt(row.get('oracle'))} | " + " | ".join(cells) + " |")
    return [
        *lines,
        "",
        "Cells: headroom captured over score-and-sort.",
        "",
        "![sweep](results/headroom_vs_strength.png)",
        "",
    ]


def scaling(r: dict[str, Any]) -> list[str]:
    lines = ["## Scaling: the production cycle vs training requests", "", r["scaling"]["markdown"]]
    return [*lines, "![scaling](results/scaling.png)", ""]


def serving(r: dict[str, Any]) -> list[str]:
    s = r["serving"]
    lines = ["## Serving load test", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {fmt(v)} |" for k, v in (s.get("ratios") or {}).items()]
    lines += [f"| check: {k} | {fmt(v)} |" for k, v in (s.get("checks") or {}).items()]
    return [*lines, ""]


SECTIONS: tuple[tuple[str, Callable[[dict[str, Any]], list[str]]], ...] = (
    ("selection", selection),
    ("finetune", finetune),
    ("drift", drift),
    ("policies", policies),
    ("best_of_n", best_of_n),
    ("diagnostics", diagnostics),
    ("judge_audit", judge_audit),
)
SECTIONS += (("sweep", sweep), ("scaling", scaling), ("serving", serving))


def render(results: dict[str, Any]) -> str:
    """The markdown page: a header naming the commit, then a section per report found."""
    lines = header(results)
    for key, section in SECTIONS:
        if results.get(key):
            lines += section(results)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str], root: Path) -> int:
    p = argparse.ArgumentParser(prog="dualrerank bench results", description=__doc__)
    p.add_argument("--out", default="docs/results.md", help="markdown file to write (default docs/results.md)")
    args = p.parse_args(argv)
    bench = BenchPaths(root)
    if not bench.results.exists():
        print(f"bench results: no {bench.results}; run `make benchmark` first")
        return 1
    out = root / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(read_json(bench.results)))
    copy_plots(root / "data/reports/benchmark/plots", out.parent / "results")
    print(f"bench results: {out}")
    return 0


def copy_plots(plots: Path, dest: Path) -> None:
    """The page's plots beside it (``results/*.png``, committed with it): ``data/`` is not in git."""
    dest.mkdir(parents=True, exist_ok=True)
    for png in sorted(plots.glob("*.png")):
        shutil.copyfile(png, dest / png.name)
