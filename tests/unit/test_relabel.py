"""Evaluator-guided target lists (training/relabel.py): valid pages, never worse than the pointwise
ranking under their own judge, and the held-out check computed on the same pages."""

from __future__ import annotations

import torch

from dualrerank.models.components import SlateInputs
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.reranking import Judge
from dualrerank.sampling import masked_sequential_argmax
from dualrerank.training.relabel import evaluator_best_targets, proposal_logits

B, N, K, F, Fc = 40, 7, 3, 4, 2


def problem() -> tuple[dict[str, torch.Tensor], Judge, Judge, PointwiseScorer]:
    torch.manual_seed(0)
    pad = torch.zeros(B, N, dtype=torch.bool)
    pad[::5, -5:] = True  # some requests have fewer candidates than page slots
    tensors = {
        "item_features": torch.randn(B, N, F),
        "context": torch.randn(B, Fc),
        "upstream_score": torch.randn(B, N),
        "upstream_rank": torch.arange(1.0, N + 1).expand(B, N).clone(),
        "pad_mask": pad,
    }

    def judge(seed: int) -> Judge:
        torch.manual_seed(seed)
        net = ListEvaluator(F, Fc, ["binary"], ["binary"], [1.0], 16, 2, 1, K, dropout=0.0)
        return Judge(net, torch.ones(1), torch.ones(1))

    return tensors, judge(1), judge(2), PointwiseScorer(F, Fc, 16, K).eval()


def test_targets_are_valid_pages_never_below_the_pointwise_ranking() -> None:
    tensors, judge, heldout, pointwise = problem()
    x = SlateInputs.from_batch(tensors)
    logged = masked_sequential_argmax(torch.randn(B, K, N), x.pad_mask)
    best, stats = evaluator_best_targets(judge, pointwise, tensors, logged, 16, 0.5, seed=3, batch=16, heldout=heldout)

    assert best.shape == (B, K)
    for page, pad in zip(best, x.pad_mask):
        real = page[page >= 0]
        assert len(real) == min(K, int((~pad).sum()))  # fills every slot it can
        assert len(set(real.tolist())) == len(real) and not pad[real].any()  # no repeats, no padding
    with torch.no_grad():
        ranking = masked_sequential_argmax(proposal_logits(pointwise(x), x.pad_mask, K), x.pad_mask)
        pair = torch.stack([ranking, best], dim=1)
        own, check = judge.score(x, pair), heldout.score(x, pair)
    assert (own[:, 1] >= own[:, 0] - 1e-6).all()  # the pointwise ranking is always a proposal
    assert abs(stats.mean_gain - float((own[:, 1] - own[:, 0]).mean())) < 1e-5
    assert stats.mean_gain > 0  # a random judge disagrees with the pointwise order somewhere
    assert stats.heldout_gain is not None
    assert abs(stats.heldout_gain - float((check[:, 1] - check[:, 0]).mean())) < 1e-5
    assert 0.0 <= stats.from_pointwise_sort < 1.0 and 0.0 <= stats.from_logged <= 1.0


def test_heldout_gain_is_absent_without_a_heldout_judge_and_equals_the_judge_gain_for_the_same_judge() -> None:
    tensors, judge, _, pointwise = problem()
    logged = masked_sequential_argmax(torch.randn(B, K, N), tensors["pad_mask"])
    _, alone = evaluator_best_targets(judge, pointwise, tensors, logged, 8, 0.5, seed=3)
    assert alone.heldout_gain is None
    _, same = evaluator_best_targets(judge, pointwise, tensors, logged, 8, 0.5, seed=3, heldout=judge)
    assert same.heldout_gain is not None and abs(same.heldout_gain - same.mean_gain) < 1e-5
