"""The quality gate: thresholds from ``params.yaml`` checked against the evaluation report.

The release step refuses to promote a model whose report says ``quality_gate.passed: false``. Every check
reads the held-out evaluator and the measured latency: the world's true utility is for the report alone.
"""

from __future__ import annotations

from typing import Any

from dualrerank.config.evaluation import GateConfig


def candidate_name(policies: dict[str, Any], n_samples: int) -> str | None:
    """The released policy: the Best-of-N row with ``n_samples`` lists (over the best NAR student)."""
    return next((name for name in policies if name.endswith(f"_bon{n_samples}")), None)


def baseline_name(policies: dict[str, Any]) -> str:
    """The policy the release replaces: score-and-sort (the pointwise model) when there is one, else upstream."""
    return "score_and_sort" if "score_and_sort" in policies else "upstream"


def check(value: float | None, rule: str, threshold: float) -> dict[str, Any]:
    """One gate check; a value that could not be computed fails (a gate never passes on missing figures)."""
    ok = value is not None and (value >= threshold if rule == ">=" else value <= threshold)
    return {"value": value, "threshold": threshold, "rule": rule, "passed": bool(ok)}


def quality_gate(report: dict[str, Any], cfg: GateConfig) -> dict[str, Any]:
    """``{"passed", "candidate", "baseline", "checks": {name: {"value", "threshold", "rule", "passed"}}}``.

    What ships is judged as a real deployment would judge it: the released policy's held-out evaluator utility
    against the baseline it replaces (on the same requests, so the difference is the paired mean gain), and its
    latency. The release step adds the check against the current champion.
    """
    rows = report["policies"]
    name = candidate_name(rows, cfg.candidate_n_samples)
    cand, base = rows.get(name) if name else None, rows.get(baseline_name(rows))
    key = "heldout_evaluator_utility"
    gain = None
    if cand and base and cand.get(key) is not None and base.get(key) is not None:
        gain = cand[key] - base[key]
    checks = {
        f"candidate_gain_vs_{baseline_name(rows)}": check(gain, ">=", cfg.min_gain_vs_baseline),
        "candidate_latency_ms_p99": check((cand or {}).get("latency_ms_p99"), "<=", cfg.max_latency_ms_p99),
    }
    passed = all(c["passed"] for c in checks.values()) and cand is not None
    return {"passed": passed, "candidate": name, "baseline": baseline_name(rows), "checks": checks}
