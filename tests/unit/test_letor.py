"""The LETOR adapter: candidates and stream, grade -> latent mapping, and the click model's formulas
(docs/click-model.md) pinned against a direct re-implementation and against sampled feedback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dualrerank.config import replace
from dualrerank.config.svmlight import SvmlightConfig
from dualrerank.config.world import WorldConfig
from dualrerank.data.svmlight import SvmlightError, read_svmlight
from dualrerank.world.letor import letor_world, transform_features
from dualrerank.world.responses import sample_responses
from dualrerank.world.simulator import World
from repo_params import repo_params

PARAMS = repo_params()
BASE = replace(PARAMS.world, page_len=4, viewport=2, sat_prob=0.6, reform_prob=0.4, exposure_decay=0.7)


def svmlight(**changes) -> SvmlightConfig:
    """``params.yaml``'s ``data.svmlight`` with ``changes``."""
    return replace(PARAMS.data.svmlight, **changes)


def letor_text(queries: dict[int, list[tuple[int, list[float]]]]) -> str:
    """SVMlight lines for ``{qid: [(grade, features), ...]}``."""
    return "".join(
        f"{g} qid:{q} " + " ".join(f"{j + 1}:{v}" for j, v in enumerate(x)) + "\n"
        for q, docs in queries.items()
        for g, x in docs
    )


@pytest.fixture
def files(tmp_path: Path):
    rng = np.random.default_rng(0)

    def docs(n):
        return [(int(rng.integers(0, 5)), rng.normal(size=3).round(3).tolist()) for _ in range(n)]

    (tmp_path / "train.txt").write_text(letor_text({1: docs(5), 2: docs(3), 3: docs(4), 4: docs(6)}))
    (tmp_path / "test.txt").write_text(letor_text({5: docs(4), 6: docs(5)}))
    return {"train": read_svmlight(tmp_path / "train.txt"), "test": read_svmlight(tmp_path / "test.txt")}


def test_candidates_stream_and_splits(files):
    cfg = svmlight(n_candidates=4, baseline_feature=1, sessions_per_query=2)
    lw = letor_world(files, cfg, BASE, val_fraction=0.34, test_fraction=0.1)
    req, wcfg = lw.world.requests, lw.world.cfg
    # query 2 has 3 < 4 documents: dropped; of 1, 3, 4 the last validates; train and val are logged twice
    assert lw.n_dropped == {"train": 1, "test": 0}
    assert req.query.tolist() == [1, 3, 1, 3, 4, 4, 5, 6]
    assert req.user.tolist() == [0, 0, 1, 1, 0, 1, 0, 0]
    assert (wcfg.n_train_requests, wcfg.n_val_requests, wcfg.n_test_requests) == (4, 2, 2)
    assert lw.world.split("test").query.tolist() == [5, 6]
    assert np.all(np.diff(req.ts) > 0) and req.request_id.tolist() == list(range(8))
    # candidates: the top 4 documents of query 1 by feature 1, in upstream order, z-scored per query
    f = files["train"]
    top = np.argsort(-f.features[:5, 0], kind="stable")[:4]
    assert req.item_id[0].tolist() == top.tolist()
    np.testing.assert_array_equal(lw.grade[0], f.label[top])
    assert np.all(np.diff(req.upstream_score, axis=1) <= 0)
    np.testing.assert_allclose(req.upstream_score.mean(1), 0.0, atol=1e-12)
    np.testing.assert_allclose(req.upstream_score.std(1), 1.0)
    # test documents get ids after the train file's rows
    assert req.item_id[6].min() >= len(f.qid)
    np.testing.assert_allclose(req.item_features[0], transform_features(f.features[top], log=True))


def test_grades_map_to_the_documented_latents(files):
    cfg = svmlight(n_candidates=4, baseline_feature=1, relevant_grade=2)
    lw = letor_world(files, cfg, BASE, 0.34, 0.1)
    req, g = lw.world.requests, lw.grade
    click = np.array(cfg.click)[g]
    np.testing.assert_allclose(1 / (1 + np.exp(-req.base_logit)), click)
    np.testing.assert_allclose(req.completion, np.array(cfg.satisfaction)[g])
    np.testing.assert_allclose(req.mean_watch, np.array(cfg.watch_seconds)[g])
    np.testing.assert_array_equal(req.on_intent, (g >= 2).astype(float))
    assert np.all(req.topic[g >= 2] == 0) and np.all(req.intent_topic == 0)
    irrelevant = [set(row[gr < 2].tolist()) for row, gr in zip(req.topic, g)]
    assert all(0 not in s for s in irrelevant)
    assert all(len(set(row.tolist())) == 4 for row in req.author)  # no two documents "similar"
    assert lw.world.cfg.redundancy == 0 and lw.world.cfg.context == 0


def reference_utility(click, sat, watch, rel, cfg: WorldConfig, beta: float) -> float:
    """docs/click-model.md, written out for one page (arrays over its K slots)."""
    K, V = len(click), cfg.viewport
    e = np.array([cfg.exposure_decay ** max(k // 2 - V // 2 + 1, 0) for k in range(K)])
    a = e / e.sum()
    cov = 1 - np.prod(1 - (rel * click)[:V])
    p_sat = (1 - beta) * np.sum(a * cfg.sat_prob * click * sat) + beta * cfg.sat_prob * cov
    p_ref = (1 - beta) * np.sum(a * cfg.reform_prob * (1 - click * rel)) + beta * cfg.reform_prob * (1 - cov)
    return float(np.sum(e * click * watch) / 60 + cfg.sat_weight * p_sat - cfg.reform_weight * p_ref)


def test_true_utility_matches_the_documented_formula(files):
    cfg = svmlight(n_candidates=4, baseline_feature=1, intent_coverage=0.5)
    lw = letor_world(files, cfg, BASE, 0.34, 0.1)
    w, req = lw.world, lw.world.requests
    rng = np.random.default_rng(1)
    pages = np.stack([rng.permutation(4) for _ in range(len(req))])
    got = w.utility(req, pages)
    for r in range(len(req)):
        g = lw.grade[r, pages[r]]
        want = reference_utility(
            np.array(cfg.click)[g], np.array(cfg.satisfaction)[g], np.array(cfg.watch_seconds)[g],
            (g >= cfg.relevant_grade).astype(float), w.cfg, 0.5,
        )  # fmt: skip
        assert got[r] == pytest.approx(want, rel=1e-12)
    # position-based clicks on the dual-column layout: exposure 1 in the viewport, 0.7 per row below it
    clicks = w.expected(req, pages)["click"]
    np.testing.assert_allclose(clicks, np.array(cfg.click)[np.take_along_axis(lw.grade, pages, 1)] * [1, 1, 0.7, 0.7])


def test_sampled_clicks_average_to_the_expectation(files):
    lw = letor_world(files, svmlight(n_candidates=4, baseline_feature=1), BASE, 0.34, 0.1)
    w = lw.world
    req = w.requests.subset(np.zeros(20000, dtype=np.int64))
    pages = np.tile(np.arange(4), (20000, 1))
    sampled = sample_responses(w.model, req, pages, np.random.default_rng(3))
    expected = w.expected(req.subset(slice(0, 1)), pages[:1])
    np.testing.assert_allclose(sampled["click"].mean(0), expected["click"][0], atol=0.015)
    assert sampled["satisfaction"].mean() == pytest.approx(expected["satisfaction"][0], abs=0.015)


def test_sorting_by_grade_is_optimal_and_viewport_order_is_free(files):
    """No document similarity in LETOR data: the exact oracle is the sort by grade, and swapping two
    viewport slots leaves the utility unchanged (the dual-column screen exposes both fully)."""
    cfg = svmlight(n_candidates=4, baseline_feature=1, intent_coverage=0.8)
    w = letor_world(files, cfg, replace(BASE, page_len=3), 0.34, 0.1).world
    best = w.oracle(w.requests)
    assert best.method == "exact"
    by_value = np.argsort(-w.item_values(w.requests), axis=1, kind="stable")[:, :3]
    np.testing.assert_allclose(w.utility(w.requests, by_value), best.utility, rtol=1e-12)
    swapped = by_value[:, [1, 0, 2]]
    np.testing.assert_allclose(w.utility(w.requests, swapped), best.utility, rtol=1e-12)


def test_saved_world_round_trips(files, tmp_path):
    w = letor_world(files, svmlight(n_candidates=4, baseline_feature=1), BASE, 0.34, 0.1).world
    w.save(tmp_path / "w.npz")
    back = World.load(tmp_path / "w.npz")
    pages = np.tile(np.arange(4), (len(w.requests), 1))
    np.testing.assert_array_equal(back.utility(back.requests, pages), w.utility(w.requests, pages))
    assert World.load_config(tmp_path / "w.npz") == w.cfg


def test_bad_configurations_name_the_problem(files, tmp_path):
    with pytest.raises(SvmlightError, match="baseline_feature 9 exceeds the 3 features"):
        letor_world(files, svmlight(n_candidates=4, baseline_feature=9), BASE, 0.34, 0.1)
    three_grades = svmlight(
        n_candidates=4, baseline_feature=1, click=(0.1, 0.5, 0.9), satisfaction=(0, 0.5, 1), watch_seconds=(1, 2, 3)
    )
    f = files["train"]
    line = f.line[np.flatnonzero(f.label >= 3)[0]]
    with pytest.raises(SvmlightError, match=rf"train.txt:{line}: grade \d, but data.svmlight.click has 3 grades"):
        letor_world(files, three_grades, BASE, 0.34, 0.1)
    with pytest.raises(SvmlightError, match="no train query has 9 or more documents"):
        letor_world(files, svmlight(n_candidates=9, baseline_feature=1), BASE, 0.34, 0.1)


def test_log_transform_is_a_fixed_signed_map():
    x = np.array([-3.0, 0.0, 7.0])
    np.testing.assert_allclose(transform_features(x, log=True), [-np.log(4), 0.0, np.log(8)], rtol=1e-6)
    np.testing.assert_array_equal(transform_features(x, log=False), x.astype(np.float32))
