"""Study ``summary``: ``data/reports/benchmark/results.json``, the benchmark's figures a docs page quotes.

Collects what the report stages wrote (every report that exists; a missing one is listed under ``missing``) with
the git commit the benchmark ran at. True-utility figures are reported only: no choice was made with them.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from dualrerank.benchmark.common import BenchPaths, read_json, run_stamp, write_json

REPORTS = ("select", "finetune", "drift", "evaluate", "scaling", "serving", "sweep")
POLICY_FIELDS: tuple[str, ...] = ("true_utility", "true_utility_ci95", "headroom_captured", "evaluator_utility")
POLICY_FIELDS += ("heldout_evaluator_utility",)


def policy_table(evaluate: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per policy the figures of ``POLICY_FIELDS`` (the rest stays in evaluate.json)."""
    return {name: {k: row.get(k) for k in POLICY_FIELDS} for name, row in evaluate.get("policies", {}).items()}


def drift_verdicts(drift: dict[str, Any]) -> dict[str, Any]:
    keys: tuple[str, ...] = ("measure", "ldro_ends_higher", "ldro_varies_less", "ldro_loses_less_to_drift")
    keys += ("ldro_minus_grpo_final", "grpo_over_ldro_final_variance")
    return {k: drift[k] for k in keys if k in drift}


def summarize(reports: dict[str, Any]) -> dict[str, Any]:
    """The quoted figures from the reports found (``reports``: name -> parsed JSON)."""
    out: dict[str, Any] = {"missing": [r for r in REPORTS if r not in reports]}
    out["runs"] = {name: rep.get("run") for name, rep in reports.items()}
    if "select" in reports:
        s = reports["select"]
        out["selection"] = {"rule": s["selection"], "chosen_lr": {m: r["lr"] for m, r in s["chosen"].items()}}
        out["selection"]["grid"] = {
            m: [{k: r.get(k) for k in ("lr", "val_evaluator_utility", "val_heldout_evaluator_utility")} for r in rows]
            for m, rows in s["grid"].items()
        }
    if "finetune" in reports:
        out["finetune"] = reports["finetune"]["headline"]
    if "drift" in reports:
        out["drift"] = drift_verdicts(reports["drift"])
    if "evaluate" in reports:
        e = reports["evaluate"]
        out["policies"] = policy_table(e)
        out["oracle"] = e.get("oracle")
        d = e.get("diagnostics", {})
        out["diagnostics"] = {k: d.get(k) for k in ("student", "ptar", "ptar_viewport", "collapse_rate", "ecg")}
        out["diagnostics"]["by_student"] = d.get("by_student", {})
        out["judge_audit"] = e.get("judge_audit")
        out["best_of_n"] = {
            f"n={n}": e.get("policies", {}).get(f"nar_ldro_bon{n}", {}).get("true_utility")
            for n in e.get("best_of_n_sizes", [])
        }
        out["evaluator_correlation"] = e.get("evaluator_correlation")
    if "scaling" in reports:
        out["scaling"] = {"runs": reports["scaling"]["runs"], "markdown": reports["scaling"]["markdown"]}
    if "serving" in reports:
        out["serving"] = {k: reports["serving"].get(k) for k in ("ratios", "checks")}
    if "sweep" in reports:
        out["sweep"] = reports["sweep"]["results"]
    return out


def load_reports(bench: BenchPaths) -> dict[str, Any]:
    """Every report of ``REPORTS`` that exists under the benchmark's report folder."""
    files = {r: bench.report(f"{r}.json") for r in REPORTS}
    return {r: read_json(f) for r, f in files.items() if f.exists()}


def main(argv: list[str], root: Path) -> int:
    argparse.ArgumentParser(prog="dualrerank bench summary", description=__doc__).parse_args(argv)
    bench = BenchPaths(root)
    results = {**run_stamp(root), **summarize(load_reports(bench))}
    print(f"bench summary: {write_json(bench.results, results)}")
    return 0
