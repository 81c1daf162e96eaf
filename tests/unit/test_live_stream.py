"""The live loop's traffic source and its measurements: fresh requests past the stream, the drift, the
covariate-adjusted comparison with control, the totals read back from the log store, and the small pieces of a
round: the evaluators' update and the gate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dualrerank.config import replace
from dualrerank.live.logstore import LogStore
from dualrerank.live.measure import adjusted_gain, logged_reward, reproduced_requests, served_pages
from dualrerank.live.report import totals
from dualrerank.live.stream import DAY, LiveWorld
from dualrerank.world.logs import impressions_table
from dualrerank.world.requests import STREAM_SECONDS, context_feature_names, item_feature_names
from dualrerank.world.responses import sample_responses
from dualrerank.world.simulator import World
from repo_params import repo_params


@pytest.fixture(scope="module")
def live() -> LiveWorld:
    params = repo_params()
    cfg = replace(params.world, n_train_requests=60, n_val_requests=20, n_test_requests=20)
    drift = replace(params.live.drift, round=2, watch_scale=0.3, sat_prob=0.9)
    return LiveWorld.from_world(World.generate(cfg), drift)


def test_round_requests_continue_the_stream_after_its_end_and_never_repeat(live: LiveWorld):
    base = live.base
    r1, r2 = live.round_requests(1, 50, seed=3), live.round_requests(2, 50, seed=3)
    assert r1.request_id.min() >= base.cfg.n_requests  # past every logged, validation and test request
    assert not set(r1.request_id) & set(r2.request_id)
    assert r1.ts.min() >= STREAM_SECONDS + DAY and r1.ts.max() < STREAM_SECONDS + 2 * DAY
    assert np.all(np.diff(r1.ts) >= 0)  # time-ordered
    np.testing.assert_array_equal(r1.item_id, live.round_requests(1, 50, seed=3).item_id)  # a rerun sees the same
    assert not np.array_equal(r1.item_id, live.round_requests(1, 50, seed=4).item_id)
    # the same population: users and catalogue of the logged world
    assert r1.user.max() < base.cfg.n_users and set(r1.item_id.ravel()) <= set(range(base.cfg.n_items))
    hour = context_feature_names(base.cfg).index("ctx_hour_sin")  # the context's hour matches the timestamp
    np.testing.assert_allclose(r1.context_features[:, hour], np.sin(2 * np.pi * (r1.ts % DAY) / DAY), atol=1e-6)


def test_the_drift_changes_what_users_value_from_its_round_on(live: LiveWorld):
    req = live.round_requests(1, 40, seed=0)
    before, after = live.at(1, req), live.at(2, req)
    assert not live.drifted(1) and live.drifted(2)
    assert before.cfg.sat_prob == live.base.cfg.sat_prob and after.cfg.sat_prob == 0.9
    np.testing.assert_allclose(after.requests.watch_scale, 0.3 * before.requests.watch_scale)
    K = live.base.cfg.page_len
    upstream = np.tile(np.arange(K), (len(req), 1))
    watch_before = before.expected(before.requests, upstream)["watch"].sum()
    assert after.expected(after.requests, upstream)["watch"].sum() == pytest.approx(0.3 * watch_before)
    # the best page changes: pages sorted by the drifted world's item values differ from the old ones
    old = np.argsort(-before.item_values(before.requests), 1)[:, :K]
    new = np.argsort(-after.item_values(after.requests), 1)[:, :K]
    assert (old != new).any(1).mean() > 0.5


def test_served_pages_and_logged_reward_read_back_what_was_served(live: LiveWorld):
    req = live.round_requests(0, 6, seed=1)
    rng = np.random.default_rng(0)
    K = live.base.cfg.page_len
    pages = np.stack([rng.permutation(req.item_id.shape[1])[:K] for _ in range(len(req))])
    resp = sample_responses(live.base.model, req, pages, rng)
    table = impressions_table(req, pages, resp, item_feature_names(live.base.cfg), context_feature_names(live.base.cfg))
    np.testing.assert_array_equal(served_pages(table, req.request_id, req.item_id, K), pages)
    weights = {"watch_time": 1 / 60, "click": 0.5, "satisfaction": 2.0, "reformulated": -2.0}
    by_hand = (
        np.round(resp["watch"], 2).sum(1) / 60 + 0.5 * resp["click"].sum(1)
        + 2.0 * resp["satisfaction"] - 2.0 * resp["reformulated"]
    )  # fmt: skip
    assert logged_reward(table, weights) == pytest.approx(by_hand.mean())


def test_the_covariate_narrows_the_interval_and_keeps_the_gain():
    rng = np.random.default_rng(0)
    n, effect = 4000, 0.05
    worth = rng.normal(2.0, 0.8, 2 * n)  # what each request is worth, whatever serves it
    c = worth + rng.normal(0, 0.05, 2 * n)  # control's page on the same request
    u_arm = worth[:n] + effect + rng.normal(0, 0.1, n)
    u_ctl = worth[n:] + rng.normal(0, 0.1, n)
    gain, half = adjusted_gain(u_arm, c[:n], u_ctl, c[n:])
    plain = 1.96 * np.sqrt(u_arm.var() / n + u_ctl.var() / n)
    assert abs(gain - effect) < half and half < plain / 4  # the same answer, a far tighter interval
    assert abs((u_arm.mean() - u_ctl.mean()) - effect) < plain


def test_the_report_reproduces_every_other_arms_control_page_and_a_check_of_controls_own():
    is_control = np.array([True, False, True, True, False, True, False])
    np.testing.assert_array_equal(reproduced_requests(is_control, 2), [0, 1, 2, 4, 6])
    np.testing.assert_array_equal(reproduced_requests(is_control, 0), [1, 4, 6])
    np.testing.assert_array_equal(reproduced_requests(is_control, 10), np.arange(7))


def test_totals_count_lost_and_duplicated_impressions_from_the_store(tmp_path):
    def shown(request: str, items: range) -> pd.DataFrame:
        positions = list(range(1, len(items) + 1))
        return pd.DataFrame({
            "request_id": request, "item_id": [f"i{i}" for i in items], "logged_position": positions,
            "arm": "ldro", "model_version": "1", "n_samples": 4,
        })  # fmt: skip

    store = LogStore(tmp_path)
    store.append(0, pd.concat([shown("0", range(3)), shown("1", range(3))]))
    store.append(1, shown("3", range(2)))  # a page of 2 where 3 were served: 1 impression lost
    assert totals(store, {0: np.array([0, 1]), 1: np.array([3])}, 3)["lost_impressions"] == 1
    assert totals(store, {0: np.array([0, 1, 2]), 1: np.array([3])}, 3)["lost_impressions"] == 4  # request 2 missing
    store.partition(2).parent.mkdir(parents=True)  # a partition written past the id check (by hand)
    pd.concat([shown("1", range(3)), shown("0", range(1))]).to_parquet(store.partition(2))
    assert totals(store, {0: np.array([0, 1])}, 3)["duplicated_impressions"] == 4


def test_the_gate_promotes_only_a_paired_gain_above_the_margin():
    import torch

    from dualrerank.live.learn import gate
    from dualrerank.models.components import SlateInputs

    tensors = {name: torch.zeros(4, 6) for name in SlateInputs._fields}  # the judge below reads none of them

    def judge(x, pages):  # a page is worth minus the sum of its candidate indices: early candidates pay
        return -pages.sum(-1).float()

    current = torch.tensor([[0, 1, 2], [0, 1, 2], [3, 4, 5], [0, 2, 4]])
    better = torch.tensor([[0, 1, 2], [0, 1, 3], [0, 1, 2], [0, 1, 2]])  # gains 0, -1, +9, +3
    verdict = gate(judge, tensors, current, better, margin=0.0)
    assert verdict["gain"] == pytest.approx(2.75) and verdict["promote"]
    assert not gate(judge, tensors, current, better, margin=3.0)["promote"]
    assert not gate(judge, tensors, better, current, margin=0.0)["promote"]  # the same pages the other way round


def test_a_request_keeps_its_evaluator_whichever_rounds_replay_it():
    from dualrerank.live.learn import main_share

    ids = np.arange(10_000, 13_000).astype(str)
    main = main_share(ids, 0.5)
    np.testing.assert_array_equal(main_share(ids[::-1], 0.5), main[::-1])  # order and company do not matter
    np.testing.assert_array_equal(main_share(ids[1000:], 0.5), main[1000:])
    assert abs(main.mean() - 0.5) < 0.03


def test_the_evaluators_update_is_validated_on_the_newest_logs(live: LiveWorld):
    from dualrerank.data.slates import table_to_slates
    from dualrerank.live.learn import recent_holdout

    K, names = live.base.cfg.page_len, (item_feature_names(live.base.cfg), context_feature_names(live.base.cfg))
    tables, rounds = [], {}
    for r in (1, 0):  # the newer round first: the split goes by time, not by the order rows arrive in
        req = rounds[r] = live.round_requests(r, 5, seed=1)
        pages = np.tile(np.arange(K), (len(req), 1))
        feedback = sample_responses(live.base.model, req, pages, np.random.default_rng(r))
        tables.append(impressions_table(req, pages, feedback, *names))
    fit, val = recent_holdout(table_to_slates(pd.concat(tables))[0], 3)
    np.testing.assert_array_equal(val.request_id.astype(np.int64), rounds[1].request_id[-3:])
    assert sorted(fit.request_id.astype(np.int64)) == sorted([*rounds[0].request_id, *rounds[1].request_id[:2]])


def test_the_evaluators_update_runs_at_the_live_rate_on_the_slice_it_is_given(live, monkeypatch, tmp_path):
    from dualrerank.data.slates import table_to_slates
    from dualrerank.live import learn
    from dualrerank.paths import Paths

    K, names = live.base.cfg.page_len, (item_feature_names(live.base.cfg), context_feature_names(live.base.cfg))
    req = live.round_requests(0, 8, seed=1)
    pages = np.tile(np.arange(K), (len(req), 1))
    feedback = sample_responses(live.base.model, req, pages, np.random.default_rng(0))
    fit, val = learn.recent_holdout(table_to_slates(impressions_table(req, pages, feedback, *names))[0], 3)
    calls = []
    monkeypatch.setattr(learn, "fit_evaluator", lambda params, *a, **kw: calls.append((params, a, kw)) or {})
    params = repo_params()
    params = params.model_copy(update={"live": replace(params.live, evaluator_lr=3e-5, evaluator_epochs=3)})
    files = {role: tmp_path / f"{role}.ckpt" for role in learn.ROLES}
    learn.update_evaluators(params, Paths(tmp_path), None, fit, val, files, files)  # type: ignore[arg-type]
    assert [c[1][2] for c in calls] == list(learn.ROLES)  # (paths, meta, role, logs, val, ...)
    for used, args, _ in calls:
        assert (used.train_evaluator.optim.lr, used.train_evaluator.optim.max_epochs) == (3e-5, 3)
        assert args[4]["pad_mask"].shape[0] == 3  # validated on the newest slice, not the production split
    assert sum(len(c[1][3]) for c in calls) == len(fit)  # the two evaluators share the rest, disjoint
