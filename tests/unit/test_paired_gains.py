"""The report's paired gains over score-and-sort: same requests, so a small consistent gain is significant."""

from __future__ import annotations

import numpy as np
import pytest

from dualrerank.evaluation.evalset import paired_gains


def test_a_small_consistent_gain_is_significant_only_when_paired():
    rng = np.random.default_rng(0)
    base = rng.normal(1.7, 0.8, size=1500)  # requests differ a lot...
    better = base + 0.01 + rng.normal(0, 0.01, size=1500)  # ...the policy gains a little on each
    rows: dict[str, dict] = {"score_and_sort": {}, "policy": {}}
    paired_gains({"score_and_sort": base, "policy": better}, rows)
    gain = rows["policy"]["true_utility_gain_vs_score_and_sort"]
    assert gain["mean"] == pytest.approx(0.01, abs=2e-3) and gain["ci_low"] > 0
    assert "true_utility_gain_vs_score_and_sort" not in rows["score_and_sort"]
    half_unpaired = 1.96 * base.std() / np.sqrt(len(base))
    assert half_unpaired > gain["mean"]  # comparing the two policies' own intervals would not see it


def test_no_baseline_no_gains():
    rows: dict[str, dict] = {"policy": {}}
    paired_gains({"policy": np.ones(3)}, rows)
    assert rows == {"policy": {}}
