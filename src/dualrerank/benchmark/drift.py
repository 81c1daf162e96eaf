"""Study ``drift-report``: LDRO vs GRPO when one reward component's scale drifts mid-stream.

Reads the drifting runs of ``rl --drift`` (``data/reports/benchmark/drift/<method>-<seed>.json``, each at the
method's chosen rate) and, as the undrifted reference, the chosen grid runs in ``select.json``. Per measure
(true utility where a world exists, reported only; training reward always): the curves across seeds, the final
values, the drift cost and the verdicts with their intervals. Writes ``drift.json`` and ``plots/drift.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dualrerank.benchmark.common import BenchPaths, params_at, read_json, read_reports, write_json
from dualrerank.evaluation.finetune_report import drift_report, plot_drift

Curve = list[tuple[int, float]]


def measures(
    runs: dict[str, dict[str, Any]], chosen: dict[str, dict[str, Any]], seeds: tuple[int, ...]
) -> dict[str, tuple[dict[str, list[Curve]], dict[str, Curve]]]:
    """``{measure: (drifted curves per method, in seed order; undrifted curve per method)}`` for the training
    reward, and for the true utility when every run has its curve."""
    methods = [m for m in ("ldro", "grpo") if m in chosen and all(f"{m}-{s}" in runs for s in seeds)]
    by_method = {m: [runs[f"{m}-{s}"] for s in seeds] for m in methods}
    out: dict[str, tuple[dict[str, list[Curve]], dict[str, Curve]]] = {
        "training_reward": (
            {m: [r["curve"] for r in rs] for m, rs in by_method.items()},
            {m: chosen[m]["curve"] for m in methods},
        )
    }
    has_truth = all(r.get("true_curve") is not None for rs in by_method.values() for r in rs)
    if has_truth and all(chosen[m].get("true_curve") is not None for m in methods):
        out["true_utility"] = (
            {m: [r["true_curve"] for r in rs] for m, rs in by_method.items()},
            {m: chosen[m]["true_curve"] for m in methods},
        )
    return out


def main(argv: list[str], root: Path) -> int:
    argparse.ArgumentParser(prog="dualrerank bench drift-report", description=__doc__).parse_args(argv)
    cfg, bench = params_at(root).benchmark.drift, BenchPaths(root)
    runs = read_reports(bench.report("drift"))
    chosen = read_json(bench.selection)["chosen"]
    found = measures(runs, chosen, tuple(cfg.seeds))
    if not found["training_reward"][0]:
        print("bench drift-report: no method has a drifting run for every seed; run the drift stages first")
        return 1
    n_steps = next(iter(runs.values()))["stream"]["steps"]
    report = drift_report(found, cfg, n_steps)  # type: ignore[arg-type]
    plot_drift(report, bench.plots / "drift.png")
    print(f"bench drift-report: {write_json(bench.report('drift.json'), report)}, {bench.plots / 'drift.png'}")
    return 0
