"""The load benchmark's report: ratios and done-checks computed from the measured levels."""

from __future__ import annotations

from dualrerank.bench.load import summarize
from dualrerank.bench.serve import report
from repo_params import repo_params


def level(nar: float, unbatched: float, ar: float, wall: float) -> dict:
    """Three servers whose requests all took ``nar``/``unbatched``/``ar`` seconds, ``wall`` seconds in all."""
    return {
        name: {**summarize([s] * 10, wall * (s / nar)), "server_cpu_ms_per_request": 1000 * s}
        for name, s in (("nar_bon", nar), ("nar_bon_unbatched", unbatched), ("ar_greedy", ar))
    }


def test_report_ratios_and_checks():
    meta = {"model_version": "m:v+abc", "page_len": 10, "default_n_samples": 16, "generator": "nar", "batching": True}
    levels = {"1": level(0.004, 0.004, 0.010, 0.04), "8": level(0.010, 0.020, 0.030, 0.1)}
    levels["in_process"] = {
        "nar_bon": summarize([0.003] * 5, 0.015),
        "nar_bon_torch": summarize([0.004] * 5, 0.02),
        "ar_greedy": summarize([0.006] * 5, 0.03),
    }
    malformed = {"server_errors": 0}
    out = report({"nar_bon": meta}, {"nar_bon": 3.0}, levels, malformed, (1.0, 1.0, 1.0), 9.0, repo_params().package)
    assert abs(out["ratios"]["nar_bon_p50_over_ar_greedy_p50"] - 0.4) < 1e-9
    assert abs(out["ratios"]["batching_throughput_gain"] - 2.0) < 1e-9
    assert abs(out["ratios"]["in_process_p50_nar_bon_over_ar_greedy"] - 0.5) < 1e-9
    assert abs(out["ratios"]["in_process_p50_nar_bon_over_nar_bon_torch"] - 0.75) < 1e-9
    assert out["checks"] == {
        "sequential_p99_under_20ms": True,
        "nar_bon_p50_at_most_0.6_ar_greedy": True,
        "batching_raises_throughput": True,
        "malformed_zero_5xx": True,
    }
    assert out["setup"]["n_samples"] == 16 and out["model_version"] == "m:v+abc"
