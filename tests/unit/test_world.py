"""The simulated world: exact expectations, the zero-dependency property, headroom, oracle, drift."""

from __future__ import annotations

import numpy as np
import pytest

from dualrerank.config import replace
from dualrerank.world.oracle import beam_search, oracle
from dualrerank.world.responses import sample_responses, sampled_utility
from dualrerank.world.simulator import World
from repo_params import repo_params


def small_world(**overrides) -> World:
    base = dict(n_train_requests=60, n_val_requests=20, n_test_requests=40)
    return World.generate(replace(repo_params().world, **{**base, **overrides}))


@pytest.fixture(scope="module")
def world() -> World:
    return small_world(redundancy=0.8, context=0.6, intent_coverage=0.5)


def test_true_utility_is_the_expectation_of_sampled_feedback(world: World):
    """Analytic utility vs the Monte-Carlo mean of sampled feedback, within 4.5 standard errors."""
    req = world.split("test").subset(slice(0, 6))
    rng = np.random.default_rng(0)
    pages = np.stack([rng.permutation(world.cfg.n_candidates)[: world.cfg.page_len] for _ in range(len(req))])
    draws = 20_000
    rep = req.subset(np.repeat(np.arange(len(req)), draws))
    realised = sampled_utility(world.model, sample_responses(world.model, rep, np.repeat(pages, draws, 0), rng))
    realised = realised.reshape(len(req), draws)
    exact = world.utility(req, pages)
    stderr = realised.std(1) / np.sqrt(draws)
    assert np.all(np.abs(realised.mean(1) - exact) < 4.5 * stderr), (realised.mean(1), exact, stderr)


def test_expected_responses_are_probabilities_and_match_sampling(world: World):
    req = world.split("test").subset(slice(0, 3))
    pages = np.tile(np.arange(world.cfg.page_len), (len(req), 1))
    e = world.expected(req, pages)
    assert np.all((e["click"] >= 0) & (e["click"] <= 1))
    assert np.all(e["satisfaction"] + e["reformulated"] <= 1 + 1e-12)
    assert np.all(e["long_view"] <= e["click"])
    draws = 20_000
    rep = req.subset(np.repeat(np.arange(len(req)), draws))
    r = sample_responses(world.model, rep, np.repeat(pages, draws, 0), np.random.default_rng(1))
    clicks = r["click"].reshape(len(req), draws, -1).mean(1)
    tol = 4.5 * np.sqrt(e["click"] * (1 - e["click"]) / draws) + 1e-9
    assert np.all(np.abs(clicks - e["click"]) < tol)
    long_view = r["long_view"].reshape(len(req), draws, -1).mean(1)
    tol_lv = 4.5 * np.sqrt(e["long_view"] * (1 - e["long_view"]) / draws) + 1e-9
    assert np.all(np.abs(long_view - e["long_view"]) < tol_lv)
    sat = r["satisfaction"].reshape(len(req), draws).mean(1)
    assert np.all(np.abs(sat - e["satisfaction"]) < 4.5 * np.sqrt(e["satisfaction"] * (1 - e["satisfaction"]) / draws))


def test_zero_dependencies_sorting_by_item_value_is_optimal_exact():
    """With every strength at 0, sorting by the true per-item value equals exhaustive search."""
    w = small_world(n_candidates=7, page_len=4, redundancy=0.0, intent_coverage=0.0, context=0.0)
    req = w.split("test").subset(slice(0, 15))
    best = oracle(w.model, req)
    assert best.method == "exact"
    by_value = np.argsort(-w.item_values(req), axis=1)[:, : w.cfg.page_len]
    np.testing.assert_allclose(w.utility(req, by_value), best.utility, rtol=0, atol=1e-12)


def test_zero_dependencies_sorting_by_item_value_is_optimal_default_size():
    w = small_world(redundancy=0.0, intent_coverage=0.0, context=0.0)
    req = w.split("test").subset(slice(0, 8))
    best = oracle(w.model, req)
    assert best.method == "beam(256)"
    by_value = np.argsort(-w.item_values(req), axis=1)[:, : w.cfg.page_len]
    np.testing.assert_allclose(w.utility(req, by_value), best.utility, rtol=0, atol=1e-12)


def test_the_beam_oracle_finds_the_same_pages_in_worker_processes():
    w = small_world()
    req = w.split("test").subset(slice(0, 20))
    one = oracle(w.model, req, chunk=3)
    two = oracle(w.model, req, chunk=3, workers=2)
    assert one.method == two.method == "beam(256)"
    np.testing.assert_array_equal(one.pages, two.pages)
    np.testing.assert_array_equal(one.utility, two.utility)


def test_dependencies_make_the_sort_suboptimal_and_beam_matches_exact():
    """With dependencies on, sorting by item value is beaten, and beam search finds the exact optimum."""
    w = small_world(n_candidates=8, page_len=4, redundancy=1.0, context=0.8, intent_coverage=0.6)
    req = w.split("test").subset(slice(0, 12))
    exact = oracle(w.model, req)
    beamed = w.utility(req, beam_search(w.model, req, beam=256))
    np.testing.assert_allclose(beamed, exact.utility, atol=1e-9)
    by_value = np.argsort(-w.item_values(req), axis=1)[:, : w.cfg.page_len]
    assert (w.utility(req, by_value) < exact.utility - 1e-6).mean() > 0.5


def test_default_world_has_real_headroom_over_the_upstream_order():
    """Held-out requests: the oracle is >= 10% above sorting by the upstream score (default knobs)."""
    w = small_world()
    test = w.split("test")
    upstream = np.tile(np.arange(w.cfg.page_len), (len(test), 1))
    u_up = w.utility(test, upstream).mean()
    u_oracle = oracle(w.model, test).utility.mean()
    assert u_oracle >= 1.10 * u_up, (u_oracle, u_up)


def test_generation_is_deterministic_given_a_seed():
    a, b = small_world(), small_world()
    for name, arr in a.requests.arrays().items():
        np.testing.assert_array_equal(arr, getattr(b.requests, name), err_msg=name)
    c = World.generate(replace(a.cfg, seed=a.cfg.seed + 1))
    assert not np.array_equal(a.requests.item_features, c.requests.item_features)


def test_exposure_is_one_in_viewport_and_non_increasing(world: World):
    e = world.model.exposure
    assert np.all(e[: world.cfg.viewport] == 1.0)
    assert np.all(np.diff(e) <= 0)


def test_empty_slots_contribute_nothing(world: World):
    req = world.split("test").subset(slice(0, 4))
    rows = np.arange(len(req))
    full = np.tile(np.arange(world.cfg.page_len), (len(req), 1))
    partial = full.copy()
    partial[:, 6:] = -1
    from dualrerank.world.utility import page_terms

    t = page_terms(world.model, req, rows, partial)
    assert np.all(t["click"][:, 6:] == 0) and np.all(t["watch"][:, 6:] == 0)
    assert np.all(world.utility(req, full) != t["utility"])


def test_drift_scales_watch_time_after_the_change_point():
    w = small_world(drift=1.0, drift_start=0.5, drift_ramp=0.1)
    scale = w.requests.watch_scale
    n = len(scale)
    assert np.all(scale[: n // 2] == 1.0)
    assert np.allclose(scale[int(0.65 * n) :], 2.0)


def test_world_round_trips_through_its_file(tmp_path, world: World):
    world.save(tmp_path / "w.npz")
    back = World.load(tmp_path / "w.npz")
    req = back.split("test")
    pages = np.tile(np.arange(world.cfg.page_len), (len(req), 1))
    np.testing.assert_array_equal(back.utility(req, pages), world.utility(world.split("test"), pages))
    assert back.cfg == world.cfg


def test_without_switches_off_only_the_named_dependencies(world: World):
    req = world.split("test").subset(slice(0, 8))
    rng = np.random.default_rng(1)
    pages = np.stack([rng.permutation(world.cfg.n_candidates)[: world.cfg.page_len] for _ in range(len(req))])
    off = world.without("redundancy")
    assert (off.cfg.redundancy, off.cfg.context, off.cfg.intent_coverage) == (0.0, 0.6, 0.5)
    assert world.cfg.redundancy == 0.8  # the world itself is unchanged
    assert not np.allclose(off.utility(req, pages), world.utility(req, pages))
    same = world.without()
    np.testing.assert_array_equal(same.utility(req, pages), world.utility(req, pages))
    with pytest.raises(ValueError, match="unknown dependencies"):
        world.without("position")
