"""The dependency-strength sweep: no dependency headroom at strength 0, some at strength 2."""

from __future__ import annotations

import pytest

from dualrerank.config import params_from_dict
from dualrerank.evaluation.plots import headroom_vs_strength
from dualrerank.evaluation.sweep import run_sweep, sweep_params


def test_sweep_params_scale_every_dependency_and_shrink_the_world(make_tiny_params):
    params = params_from_dict(make_tiny_params())
    sp = sweep_params(params, 2.0)
    assert sp.world.redundancy == pytest.approx(2 * params.world.redundancy)
    assert sp.world.context == pytest.approx(2 * params.world.context)
    assert sp.world.intent_coverage == min(1.0, 2 * params.world.intent_coverage)
    assert sp.world.n_train_requests == params.sweep.n_train_requests
    assert sweep_params(params, 0.0).world.redundancy == 0.0


@pytest.mark.integration
def test_sweep_shows_no_dependency_headroom_without_dependencies(tmp_path, make_tiny_params):
    raw = make_tiny_params()
    raw["sweep"].update(strengths=[0.0, 2.0], n_train_requests=120, n_val_requests=30, n_test_requests=30,
                        max_epochs=1, stages=["generate", "validate", "train_evaluator", "train_pointwise",
                                              "build_targets", "train_teacher", "evaluate"])  # fmt: skip
    result = run_sweep(params_from_dict(raw), tmp_path)
    zero, strong = result["results"]
    assert zero["oracle"] == pytest.approx(zero["item_value_sort"], abs=1e-9)  # sorting is optimal
    assert strong["oracle"] > strong["item_value_sort"] + 1e-3
    assert set(zero["true_utility"]) >= {"upstream", "score_and_sort", "ar_greedy"}
    plot = headroom_vs_strength(result, tmp_path / "sweep.png")
    assert plot.stat().st_size > 10_000
