"""The drift report's figures: the true-utility probe curve and the per-measure verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualrerank.config.finetune import DriftConfig
from dualrerank.config.world import WorldConfig
from dualrerank.evaluation.finetune_report import drift_report, true_curve
from dualrerank.evaluation.scoring import EvalSet
from dualrerank.world.simulator import World


def test_true_curve_is_the_greedy_lists_true_utility_over_the_upstream_lists():
    world = World.generate(WorldConfig(n_train_requests=10, n_val_requests=10, n_test_requests=12))
    req = world.split("test")
    K, n = world.cfg.page_len, world.cfg.n_candidates
    ev = EvalSet({}, np.zeros((len(req), n)), world.cfg.viewport, K, world, req)
    upstream = torch.arange(K).expand(len(req), K).clone()
    other = torch.arange(n - K, n).flip(0).expand(len(req), K).clone()
    curve = true_curve([0, 5], [upstream, other], upstream, ev)
    assert curve is not None and curve[0] == (0, pytest.approx(1.0))
    expected = world.utility(req, other.numpy()).mean() / world.utility(req, upstream.numpy()).mean()
    assert curve[1] == (5, pytest.approx(float(expected)))
    assert true_curve([0], [upstream], upstream, EvalSet({}, ev.item_reward, 4, K)) is None  # no world, no curve


def _curves(finals: list[float]) -> list[list[tuple[int, float]]]:
    """Curves over 10 steps (probe every 2) that start at 1 and sit at ``final`` over the last 20%."""
    return [[(s, 1.0 if s < 8 else f) for s in range(0, 11, 2)] for f in finals]


def test_drift_report_verdicts_come_from_the_true_utility_where_it_exists():
    drift = DriftConfig(seeds=(0, 1, 2))
    truth = {"ldro": _curves([1.02, 1.03, 1.04]), "grpo": _curves([1.0, 1.02, 0.98])}
    reward = {"ldro": _curves([1.1, 1.1, 1.1]), "grpo": _curves([1.3, 1.3, 1.3])}  # GRPO "wins" on its reward
    undrifted = {"ldro": _curves([1.05])[0], "grpo": _curves([1.01])[0]}
    report = drift_report({"true_utility": (truth, undrifted), "training_reward": (reward, undrifted)}, drift, 10)
    t = report["measures"]["true_utility"]["summary"]
    assert t["ldro"]["final_mean"] == pytest.approx(1.03) and t["ldro"]["final_std"] == pytest.approx(0.01)
    assert t["grpo"]["final_mean"] == pytest.approx(1.0) and t["grpo"]["final_std"] == pytest.approx(0.02)
    assert t["ldro"]["drift_cost"] == pytest.approx(0.02) and t["grpo"]["drift_cost"] == pytest.approx(0.01)
    assert report["measure"] == "true_utility"
    assert report["ldro_ends_higher"] and report["ldro_varies_less"] and not report["ldro_loses_less_to_drift"]
    assert not report["measures"]["training_reward"]["ldro_ends_higher"]
    only_reward = drift_report({"training_reward": (reward, undrifted)}, drift, 10)
    assert only_reward["measure"] == "training_reward" and not only_reward["ldro_ends_higher"]
