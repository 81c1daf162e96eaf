"""The on-policy round's pure parts: its logs as slates, the evaluators' halves and the student's pages."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.models.encoder import SetEncoder
from dualrerank.models.student import NARStudent
from dualrerank.stages.evaluator_fit import halves
from dualrerank.stages.explore import logged_outcomes, request_pages, round_slates, student_pages

R, N, K, F = 3, 5, 3, 2
META = SlateMeta(
    item_features=["feat_a", "feat_b"],
    context_features=["ctx_a"],
    feedback=["click", "watch_time", "label_long_view"],
    page_feedback=["satisfaction", "reformulated"],
    max_candidates=N,
    page_len=K,
    n_requests={"train": R},
    source="world",
)


def base_slates() -> Slates:
    rng = np.random.default_rng(0)
    pad = np.zeros((R, N), dtype=bool)
    pad[2, 4] = True
    return Slates(
        request_id=np.array(["r0", "r1", "r2"]),
        ts=np.arange(R, dtype=np.int64),
        item_id=np.array([[f"i{r}{n}" for n in range(N)] for r in range(R)]),
        item_features=rng.normal(size=(R, N, F)).astype(np.float32),
        context=rng.normal(size=(R, 1)).astype(np.float32),
        upstream_score=rng.normal(size=(R, N)).astype(np.float32),
        upstream_rank=np.tile(np.arange(1, N + 1, dtype=np.float32), (R, 1)),
        pad_mask=pad,
        logged_page=np.tile(np.arange(K), (R, 1)),
        feedback=np.ones((R, N, 3), dtype=np.float32),  # the logging policy's feedback: must be replaced
        page_feedback=np.ones((R, 2), dtype=np.float32),
    )


def test_round_slates_puts_each_response_on_its_shown_candidate_and_zero_elsewhere():
    pages = np.array([[4, 0, 2], [1, 3, 0], [3, 2, 1]])
    responses = {
        "click": np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0]]),
        "watch": np.array([[12.346, 0, 3.0], [0, 0, 7.5], [1.0, 2.0, 0]]),
        "long_view": np.array([[1, 0, 0], [0, 0, 1], [0, 1, 0]]),
        "satisfaction": np.array([1, 0, 1]),
        "reformulated": np.array([0, 1, 0]),
    }
    out = round_slates(base_slates(), pages, responses, META)
    np.testing.assert_array_equal(out.logged_page, pages)
    assert out.feedback[0, 4, 1] == pytest.approx(12.35)  # watch time rounded as the logs record it
    assert out.feedback[1, 0, 0] == 1 and out.feedback[1, 1, 0] == 0 and out.feedback[2, 2, 2] == 1
    shown = np.zeros((R, N), dtype=bool)
    np.put_along_axis(shown, pages, True, axis=1)
    assert (out.feedback[~shown] == 0).all()  # unshown candidates carry no feedback
    np.testing.assert_array_equal(out.page_feedback, [[1, 0], [0, 1], [1, 0]])
    np.testing.assert_array_equal(out.item_features, base_slates().item_features)  # the same requests
    # per shown page: clicks, watch seconds, ..., and the business reward on them
    got = logged_outcomes(out, META, {"watch_time": 1 / 60, "satisfaction": 2.0, "reformulated": -2.0})
    assert got["click"] == pytest.approx(5 / 3) and got["satisfaction"] == pytest.approx(2 / 3)
    watch = (12.35 + 3.0 + 7.5 + 1.0 + 2.0) / 3
    assert got["reward"] == pytest.approx(watch / 60 + 2 * 2 / 3 - 2 * 1 / 3, abs=1e-5)


def test_round_slates_names_a_feedback_column_the_world_cannot_draw():
    meta = SlateMeta(**{**META.__dict__, "feedback": ["click", "label_share"]})
    with pytest.raises(ValueError, match="label_share"):
        round_slates(base_slates(), np.zeros((R, K), dtype=np.int64), {}, meta)


@pytest.mark.parametrize("n,share", [(10, 0.5), (10, 0.3), (12000, 0.5)])
def test_halves_are_disjoint_interleaved_and_sized_by_the_share(n, share):
    main = halves(n, share)
    assert main.sum() == int(np.floor(n * share))
    assert main[: n // 2].sum() > 0 and main[n // 2 :].sum() > 0  # both see the whole period


def test_student_pages_are_seeded_distinct_unpadded_draws():
    torch.manual_seed(0)
    student = NARStudent(SetEncoder(F, 1, 16, 2, 1, 0.0), 16, 2, 1, K, 0.0).eval()
    slates = base_slates()
    pages = student_pages(student, slates, 6, 1.0, seed=3)
    assert pages.shape == (R, 6, K)
    assert all(len(set(p)) == K for p in pages.reshape(-1, K))  # no item twice on a page
    assert not slates.pad_mask[np.repeat(np.arange(R), 6 * K), pages.reshape(-1)].any()  # never a padded slot
    np.testing.assert_array_equal(pages, student_pages(student, slates, 6, 1.0, seed=3))
    assert not np.array_equal(pages, student_pages(student, slates, 6, 1.0, seed=4))


def test_an_interrupted_evaluator_fit_resumes_only_on_the_same_round(tmp_path, monkeypatch):
    """The resume key of an evaluator fit covers the round's settings and student, not only the splits."""
    from dualrerank.config import replace
    from dualrerank.paths import Paths
    from dualrerank.stages import evaluator_fit as te
    from repo_params import repo_params

    paths = Paths(tmp_path)
    for f in (paths.split("train"), paths.split("val"), paths.model("student")):
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(b"x")
    keys: list[str] = []

    def fake_train(module, tr, val_t, optim, params, paths, key):
        keys.append(key)
        raise RuntimeError("stop before fitting")

    monkeypatch.setattr(te, "train", fake_train)
    params = repo_params(train_evaluator={"main": {"d_model": 8, "n_heads": 2, "n_layers": 1}})
    explore = params.explore
    slates = base_slates()
    for source in (((), ()), ((explore,), (paths.model("student"),)),
                   ((replace(explore, pages_per_request=2),), (paths.model("student"),))):  # fmt: skip
        with pytest.raises(RuntimeError):
            te.fit_evaluator(params, paths, META, "evaluator", slates, {}, "evaluator_explore", source)
    assert len(set(keys)) == 3


def test_slot_feedback_follows_the_logged_page_and_is_zero_on_empty_slots():
    s = base_slates()
    fb = np.arange(R * N * 3, dtype=np.float32).reshape(R, N, 3)
    page = np.array([[2, 0, -1], [4, 3, 1], [1, -1, -1]])
    s = dataclasses.replace(s, feedback=fb, logged_page=page)
    out = s.slot_feedback
    assert out.shape == (R, K, 3)
    np.testing.assert_array_equal(out[0, 0], fb[0, 2])
    np.testing.assert_array_equal(out[1, 2], fb[1, 1])
    assert (out[0, 2] == 0).all() and (out[2, 1:] == 0).all()


def test_request_pages_put_the_logged_page_first_then_the_rounds_pages_of_the_same_request():
    logged = base_slates()
    m = 2
    rows = np.repeat(np.arange(R), m)
    pages = np.array([[4, 0, 2], [1, 3, 0], [3, 2, 1], [0, 1, 2], [2, 3, 0], [1, 0, 3]])
    responses = {
        "click": np.ones((R * m, K)), "watch": np.full((R * m, K), 5.0), "long_view": np.zeros((R * m, K)),
        "satisfaction": np.arange(R * m) % 2, "reformulated": np.zeros(R * m),
    }  # fmt: skip
    explored = round_slates(logged.subset(rows), pages, responses, META)
    batch = request_pages(logged, explored, m)
    assert batch["pages"].shape == (R, 1 + m, K)
    np.testing.assert_array_equal(batch["pages"][:, 0], logged.logged_page)
    np.testing.assert_array_equal(batch["pages"][1, 1:], pages[2:4])
    assert batch["slot_feedback"].shape == (R, 1 + m, K, 3)
    assert (batch["slot_feedback"][:, 0] == 1).all()  # the logging policy's feedback
    assert (batch["slot_feedback"][:, 1:, :, 1] == 5.0).all()
    np.testing.assert_array_equal(batch["page_outcomes"][:, 1:, 0], (np.arange(R * m) % 2).reshape(R, m))
    np.testing.assert_array_equal(batch["item_features"], logged.item_features)  # one row per request
    with pytest.raises(ValueError, match="not 2 per logged request"):
        request_pages(logged, explored.subset(np.arange(R * m)[::-1]), m)  # out of order


def test_evaluator_step_on_one_page_per_request_matches_either_layout_and_adds_the_comparison():
    """The single-page layout is the grouped one with G = 1; with several pages the within-request term is added
    only when weighted."""
    from dualrerank.data.datamodule import slate_tensors
    from dualrerank.models.evaluator import ListEvaluator
    from dualrerank.training.modules import EvaluatorLitModule

    torch.manual_seed(0)
    net = ListEvaluator(F, 1, ["binary", "continuous", "binary"], ["binary", "binary"], [1.0, 3.0, 1.0],
                        d_model=8, n_heads=2, n_layers=1, page_len=K, dropout=0.0).eval()  # fmt: skip
    s = base_slates()
    rng = np.random.default_rng(1)
    s = dataclasses.replace(s, feedback=rng.integers(0, 2, (R, N, 3)).astype(np.float32))
    single = slate_tensors(s)
    grouped = {k: v for k, v in single.items() if k not in ("logged_page", "feedback", "page_feedback")}
    grouped |= {"pages": single["logged_page"][:, None], "slot_feedback": torch.from_numpy(s.slot_feedback)[:, None],
                "page_outcomes": single["page_feedback"][:, None]}  # fmt: skip
    w_item, w_page = torch.tensor([0.0, 1 / 60, 0.0]), torch.tensor([2.0, -2.0])
    module = EvaluatorLitModule(net, 1e-3, 0.0, 1.0, w_item, w_page)
    a, _ = module.step(single)
    b, terms = module.step(grouped)
    assert a.item() == pytest.approx(b.item(), rel=1e-6) and "within" not in terms  # G = 1: nothing to compare
    two = {k: v.repeat_interleave(2, 1) if k in ("pages", "slot_feedback", "page_outcomes") else v
           for k, v in grouped.items()}  # fmt: skip
    two["page_outcomes"][:, 1, 0] = 1 - two["page_outcomes"][:, 1, 0]  # same page, other outcome
    loss, terms = module.step(two)
    assert terms["within"].item() > 0  # identical pages predicted alike, logged apart
    off, _ = EvaluatorLitModule(net, 1e-3, 0.0, 0.0, w_item, w_page).step(two)
    assert loss.item() == pytest.approx(off.item() + terms["within"].item(), rel=1e-5)
