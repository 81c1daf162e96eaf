"""The quality gate: thresholds from ``params.yaml`` checked against the evaluation report.

The release step refuses to promote a model whose report says ``quality_gate.passed: false``.
Utilities are the true utility when the data come from a world, else the held-out evaluator's.
"""

from __future__ import annotations

from typing import Any

from dualrerank.config.evaluation import GateConfig


def _utility(row: dict[str, Any] | None) -> float | None:
    if row is None:
        return None
    value = row.get("true_utility")
    return value if value is not None else row.get("heldout_evaluator_utility")


def candidate_name(policies: dict[str, Any], n_samples: int) -> str | None:
    """The released policy: the Best-of-N row with ``n_samples`` lists (over the best NAR student)."""
    return next((name for name in policies if name.endswith(f"_bon{n_samples}")), None)


def quality_gate(report: dict[str, Any], cfg: GateConfig) -> dict[str, Any]:
    """``{"passed", "candidate", "checks": {name: {"value", "threshold", "rule", "passed"}}}``.

    A check whose inputs are missing (e.g. headroom without a world) is reported with value null and
    fails, so a gate never passes on figures it could not compute — except where ``cfg`` marks the
    check optional for data without ground truth.
    """
    rows = report["policies"]
    name = candidate_name(rows, cfg.candidate_n_samples)
    cand = rows.get(name) if name else None
    kd, ar = _utility(rows.get("nar_kd")), _utility(rows.get("ar_greedy"))
    checks = {
        "candidate_headroom_captured": (cand or {}).get("headroom_captured"),
        "kd_over_ar_utility": (kd / ar) if kd is not None and ar else None,
        "candidate_latency_ms_p99": (cand or {}).get("latency_ms_p99"),
    }
    rules = {
        "candidate_headroom_captured": (">=", cfg.min_headroom_captured),
        "kd_over_ar_utility": (">=", cfg.min_kd_over_ar),
        "candidate_latency_ms_p99": ("<=", cfg.max_latency_ms_p99),
    }
    no_truth = report["oracle"].get("utility") is None
    out = {}
    for key, value in checks.items():
        rule, threshold = rules[key]
        if value is None:
            ok = key == "candidate_headroom_captured" and no_truth  # headroom needs ground truth
        else:
            ok = value >= threshold if rule == ">=" else value <= threshold
        out[key] = {"value": value, "threshold": threshold, "rule": rule, "passed": bool(ok)}
    return {"passed": all(c["passed"] for c in out.values()) and cand is not None, "candidate": name, "checks": out}
