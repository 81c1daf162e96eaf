"""The ONNX Runtime backend: the exported student and judge give eager torch's outputs and pages."""

from __future__ import annotations

import pytest
import torch

from dualrerank.models.components import SlateInputs
from dualrerank.models.io import build_model
from dualrerank.reranking import Judge, Reranker
from dualrerank.reranking.exported import ExportedEvaluator, ExportedStudent, candidate_sizes, example_lists, padded
from dualrerank.sampling import gumbel_max_pages

F, C, K = 5, 4, 4
GEN_HP = dict(
    n_item_features=F, n_context_features=C, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, page_len=K, dropout=0.0
)
# the served judge's shape: pair terms, page structure with item groups, the per-item pathway
EVAL_HP = dict(
    n_item_features=F, n_context_features=C, item_kinds=["binary", "continuous"], page_kinds=["binary"],
    item_scales=[1.0, 20.0], d_model=16, n_heads=2, n_layers=1, page_len=K, residual=True, pairwise=True,
    identity_groups=[[0, 1], [2]], structure=True, group_columns=[3, 4], n_groups=3,
)  # fmt: skip


def requests(B: int, n: int, n_pad: int = 0, seed: int = 0) -> SlateInputs:
    """``B`` random requests of ``n`` candidates (the last ``n_pad`` of them padding), some sharing an author."""
    g = torch.Generator().manual_seed(seed)
    features = torch.randn(B, n, F, generator=g)
    features[:, 1, :2] = features[:, 0, :2]
    pad = torch.zeros(B, n, dtype=torch.bool)
    if n_pad:
        pad[:, n - n_pad :] = True
    rank = torch.arange(1, n + 1).float().repeat(B, 1).masked_fill(pad, 0.0)
    return SlateInputs(features, torch.randn(B, C, generator=g), torch.randn(B, n, generator=g), rank, pad)


def randomized(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Every weight drawn at random (zero-initialised terms included), so every pathway shows in the outputs."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0, 0.3)
    return net.eval()


@pytest.fixture(scope="module")
def nets():
    student = randomized(build_model("student", GEN_HP), 0)
    evaluator = randomized(build_model("evaluator", EVAL_HP), 1)
    evaluator.fit_groups(requests(4, 12).item_features.reshape(-1, F), seed=0)
    judge = Judge(evaluator, torch.tensor([1.0, 0.05]), torch.tensor([0.5]))
    return student, judge, Reranker(student, judge, seed=3).exported(n_candidates=12, n_lists=8, threads=1)


# traced at 12 candidates and 8 lists: fewer candidates are padded up to 12, more (14) run in eager torch
@pytest.mark.parametrize(
    ("B", "n", "n_pad", "G"), [(1, 12, 0, 8), (1, 12, 0, 1), (3, 9, 2, 5), (2, 3, 0, 4), (2, 14, 0, 16)]
)
def test_exported_passes_match_eager_torch_at_other_shapes_than_traced(nets, B, n, n_pad, G):
    student, judge, served = nets
    assert isinstance(served.generator, ExportedStudent) and isinstance(served.judge.evaluator, ExportedEvaluator)
    assert list(served.generator.sessions) == [12]
    x = requests(B, n, n_pad, seed=B + n)
    with torch.inference_mode():
        logits = student(x)
        torch.testing.assert_close(served.generator(x), logits, atol=1e-5, rtol=1e-5)
        lists = gumbel_max_pages(logits, x.pad_mask, G, generator=torch.Generator().manual_seed(1))
        for got, want in zip(served.judge.score_parts(x, lists), judge.score_parts(x, lists), strict=True):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_exported_reranker_returns_eager_torchs_pages_and_keeps_the_seeded_draws(nets):
    student, judge, _ = nets
    x = requests(4, 12, 1, seed=7)
    eager, served = Reranker(student, judge, seed=5), Reranker(student, judge, seed=5).exported(12, 8, threads=1)
    for n in (1, 8, 16):
        want, got = eager.rerank(x, n), served.rerank(x, n)
        assert torch.equal(got.pages, want.pages)
        torch.testing.assert_close(got.scores, want.scores, equal_nan=True, atol=1e-5, rtol=1e-5)


def test_candidate_sizes_double_up_to_the_largest_request_and_padding_keeps_the_logits(nets):
    assert candidate_sizes(50) == (50,)
    assert candidate_sizes(50, 200) == (50, 100, 200)
    assert candidate_sizes(50, 120) == (50, 100, 120)
    student, _, _ = nets
    x = requests(2, 6, 1)
    with torch.inference_mode():
        torch.testing.assert_close(student(padded(x, 11))[..., :6], student(x))


def test_exported_judge_tells_lists_apart_and_an_ar_reranker_stays_in_torch(nets):
    *_, served = nets
    x = requests(1, 12)
    scores, _ = served.judge.score_parts(x, example_lists(12, 8, K))
    assert scores.std() > 0  # different lists, different scores: the graph reads the pages, not a constant
    teacher = build_model("teacher", GEN_HP).eval()
    ar = Reranker(teacher)
    assert ar.exported(12, 8) is ar
