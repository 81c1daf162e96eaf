"""Evaluator-guided target lists for the supervised generators [ours].

Logged pages come from a weak, randomised logging policy, so imitating them (even reordered by observed
reward) teaches mostly the logging policy's own order. This builds better targets from the same logs,
in the generator-evaluator style of NAR4Rec/CONGRATS and GoalRank's group-relative reference lists: for
each training request, propose ``G`` pages — the pointwise model's ranking and Plackett-Luce
perturbations of it, plus the logged page reordered by observed reward — score them in one batch with
the list-wise evaluator (trained on logged feedback), and keep the best. The evaluator supplies the
page-level credit (redundancy, order, intent coverage) that logged orders lack; the AR teacher turns
those judgments into a sequential policy. No ground truth is involved.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from dualrerank.models.components import SlateInputs
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.reranking import Judge
from dualrerank.sampling import gumbel_max_pages


@dataclass(frozen=True)
class RelabelStats:
    from_pointwise_sort: float  # share of targets equal to the pointwise ranking
    from_logged: float  # share of targets equal to the reordered logged page
    mean_gain: float  # judge utility of the target minus that of the pointwise ranking
    heldout_gain: float | None = None  # the same under the held-out evaluator (no rules): a truth-free check


def proposal_logits(scores: Tensor, pad_mask: Tensor, k: int) -> Tensor:
    """``[B, K, N]`` Plackett-Luce logits from pointwise scores ``[B, N]``: standardised per request, the
    same at every position (so the masked sequential policy samples without replacement)."""
    real = ~pad_mask
    n = real.sum(1, keepdim=True).clamp(min=1)
    s = scores.masked_fill(pad_mask, 0.0)
    mean = s.sum(1, keepdim=True) / n
    std = (((s - mean) ** 2).masked_fill(pad_mask, 0.0).sum(1, keepdim=True) / n).sqrt().clamp(min=1e-6)
    z = ((s - mean) / std).masked_fill(pad_mask, 0.0)
    return z[:, None, :].expand(-1, k, -1)


@torch.no_grad()
def evaluator_best_targets(
    judge: Judge,
    pointwise: PointwiseScorer,
    tensors: dict[str, Tensor],
    logged_targets: Tensor,
    n_proposals: int,
    temperature: float,
    seed: int,
    batch: int = 256,
    heldout: Judge | None = None,
) -> tuple[Tensor, RelabelStats]:
    """Best of ``n_proposals`` + 1 candidate pages per request under ``judge``: ``[R, K]`` and stats.

    With ``heldout`` (the held-out evaluator, never a target criterion) the stats also say whether the
    targets beat the pointwise ranking under a judge they were not chosen by: target construction that
    only exploits the training evaluator shows as a held-out gain near or below zero.
    """
    gen = torch.Generator().manual_seed(seed)
    k = logged_targets.shape[1]
    out, pointwise_hits, logged_hits, gains, checks = [], 0, 0, [], []
    for s in range(0, len(logged_targets), batch):
        x = SlateInputs.from_batch({name: t[s : s + batch] for name, t in tensors.items()})
        logits = proposal_logits(pointwise(x), x.pad_mask, k)
        lists = gumbel_max_pages(logits, x.pad_mask, n_proposals, temperature, include_greedy=True, generator=gen)
        candidates = torch.cat([lists, logged_targets[s : s + batch, None, :]], dim=1)  # [B, G + 1, K]
        utility = judge.score(x, candidates)
        best = utility.argmax(1)
        rows = torch.arange(len(best))
        out.append(candidates[rows, best])
        pointwise_hits += int((best == 0).sum())
        logged_hits += int((best == candidates.shape[1] - 1).sum())
        gains.append(utility[rows, best] - utility[:, 0])
        if heldout is not None:
            checked = heldout.score(x, torch.stack([candidates[:, 0], candidates[rows, best]], dim=1))
            checks.append(checked[:, 1] - checked[:, 0])
    n = len(logged_targets)
    held = float(torch.cat(checks).mean()) if checks else None
    stats = RelabelStats(pointwise_hits / n, logged_hits / n, float(torch.cat(gains).mean()), held)
    return torch.cat(out), stats
