"""The drift report's figures: the true-utility probe curve and the per-measure verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualrerank.config import replace
from dualrerank.evaluation.finetune_report import drift_report, seed_figures, true_curve
from dualrerank.evaluation.scoring import EvalSet
from dualrerank.world.simulator import World
from repo_params import repo_params


def small_eval_set() -> tuple[EvalSet, torch.Tensor, torch.Tensor]:
    """A tiny world's test requests and two fixed lists per request: the first K candidates, and the last K."""
    world = World.generate(replace(repo_params().world, n_train_requests=10, n_val_requests=10, n_test_requests=12))
    req = world.split("test")
    K, n = world.cfg.page_len, world.cfg.n_candidates
    ev = EvalSet({}, np.zeros((len(req), n)), world.cfg.viewport, K, world, req)
    upstream = torch.arange(K).expand(len(req), K).clone()
    other = torch.arange(n - K, n).flip(0).expand(len(req), K).clone()
    return ev, upstream, other


def test_true_curve_is_the_greedy_lists_true_utility_over_the_upstream_lists():
    ev, upstream, other = small_eval_set()
    world, req, K = ev.world, ev.requests, ev.page_len
    curve = true_curve([0, 5], [upstream, other], upstream, ev)
    assert curve is not None and curve[0] == (0, pytest.approx(1.0))
    expected = world.utility(req, other.numpy()).mean() / world.utility(req, upstream.numpy()).mean()
    assert curve[1] == (5, pytest.approx(float(expected)))
    assert true_curve([0], [upstream], upstream, EvalSet({}, ev.item_reward, 4, K)) is None  # no world, no curve


def test_seed_figures_gain_per_run_and_of_the_seed_average():
    ev, first, last = small_eval_set()
    gap = float((ev.world.utility(ev.requests, last.numpy()) - ev.world.utility(ev.requests, first.numpy())).mean())
    out = seed_figures({"ldro": [first, last], "grpo": [first, first]}, ev, baseline=first, seeds=[0, 1])
    assert out is not None and out["seeds"] == [0, 1]
    assert [g["mean"] for g in out["ldro"]["gain_per_seed"]] == [pytest.approx(0.0), pytest.approx(gap)]
    assert out["ldro"]["gain_seed_mean"]["mean"] == pytest.approx(gap / 2)
    assert out["grpo"]["gain_seed_mean"] == {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    assert out["ldro_minus_grpo_seed_mean"]["mean"] == pytest.approx(gap / 2)
    no_world = EvalSet({}, ev.item_reward, 4, ev.page_len)
    assert seed_figures({"ldro": [first]}, no_world, first, [0]) is None


def _curves(finals: list[float]) -> list[list[tuple[int, float]]]:
    """Curves over 10 steps (probe every 2) that start at 1 and sit at ``final`` over the last 20%."""
    return [[(s, 1.0 if s < 8 else f) for s in range(0, 11, 2)] for f in finals]


def test_drift_report_verdicts_come_from_the_true_utility_where_it_exists():
    drift = replace(repo_params().benchmark.drift, seeds=(0, 1, 2))
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
    # ends higher by 0.03, but three seeds with these spreads cannot tell (Welch, df 50/17): zero is inside
    gap = report["ldro_minus_grpo_final"]
    assert gap["mean"] == pytest.approx(0.03) and gap["ci_low"] == pytest.approx(-0.011554, abs=1e-5)
    assert gap["ci_high"] == pytest.approx(0.071554, abs=1e-5)
    # varies less by a variance ratio of 4, which F(2, 2) cannot tell either: [4/39, 4·39] holds 1
    spread = report["grpo_over_ldro_final_variance"]
    assert spread == pytest.approx({"ratio": 4.0, "ci_low": 4.0 / 39.0, "ci_high": 156.0})
    only_reward = drift_report({"training_reward": (reward, undrifted)}, drift, 10)
    assert only_reward["measure"] == "training_reward" and not only_reward["ldro_ends_higher"]
