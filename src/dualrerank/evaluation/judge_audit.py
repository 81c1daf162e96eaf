"""How good is the Best-of-N judge where it is used: on the served generator's own candidate lists.

``evaluator_correlation`` ranks pages of widely varied order (Plackett-Luce from temperature 0.3 to 3), where
any sensible judge does well. Best-of-N and RL ask something harder: which of ``G`` lists drawn around one
student's greedy list is best. This audit draws exactly those lists (the released ``N``, the serving temperature,
greedy first) for held-out requests and reports, per request:

- **agreement** of the training and held-out evaluators (Spearman within the request): needs no ground truth, so
  it can be watched on production traffic. Agreement is necessary, not sufficient: two evaluators trained on
  logs of the same logging policy can share a bias;
- with a world, each judge's **Spearman with the true utility** within the request, overall and per weighted
  response (the evaluators without rules, the rules alone, the released judge = evaluator + rules);
- the true utility of the list each judge would **select**, paired against the released judge's choice, beside
  the greedy list and the best list under the truth (the ceiling of the candidate set);
- **by dependency**: the true utility split into what each dependency of the world adds to a page (its utility
  minus its utility in the same world with that dependency off) and the rest (every dependency off: each item's
  own value on its slot). For each part: its spread within a request, its Spearman with the whole truth, and each
  judge's Spearman with it, so the audit says which part of a page the judge sees and which it misses.

Scores of every list are computed once; selections are argmaxes with ties to the earlier list (greedy first).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import Tensor

from dualrerank import metrics
from dualrerank.evaluation.scoring import EvalSet, batched_scores, list_utilities, response_utilities
from dualrerank.models.components import SlateInputs
from dualrerank.reranking import Judge, Reranker
from dualrerank.world.requests import RequestSet
from dualrerank.world.simulator import DEPENDENCIES, World


@torch.inference_mode()
def candidate_lists(reranker: Reranker, tensors: dict[str, Tensor], n: int, batch: int = 256) -> Tensor:
    """``[R, n, K]`` the lists ``reranker``'s Best-of-``n`` chooses from (``Reranker.draw``), batch by batch as
    ``run_policy`` feeds it, so the same seed gives the same lists."""
    out = []
    for s in range(0, len(tensors["pad_mask"]), batch):
        x = SlateInputs.from_batch({k: v[s : s + batch] for k, v in tensors.items()})
        out.append(reranker.draw(reranker.generator(x), x.pad_mask, n))
    return torch.cat(out)


def within_request_spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over requests (rows) of the Spearman correlation of ``a [R, G]`` and ``b [R, G]`` (NaN rows skipped)."""
    return float(np.nanmean([metrics.spearman(a[r], b[r]) for r in range(len(a))]))


def select(scores: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``[R]`` the ``values [R, G]`` of each row's best-scored list (ties to the earlier list)."""
    return values[np.arange(len(values)), scores.argmax(1)]


def judge_audit(ev: EvalSet, lists: Tensor, judge: Judge) -> dict:
    """The audit of ``judge`` (the released one, rules included) on ``lists [R, G, K]``; see the module doc."""
    bare = dataclasses.replace(judge, rules=None)
    scores = {"evaluator_with_rules": batched_scores(judge, ev.tensors, lists)}
    scores["evaluator"] = batched_scores(bare, ev.tensors, lists)
    if judge.rules is not None:  # scored on their own, so that their ties stay exact ties
        scores["rules"] = batched_scores(judge.rules, ev.tensors, lists)
    heldout = (ev.judges or {}).get("heldout_evaluator")
    if heldout is not None:
        scores["heldout_evaluator"] = batched_scores(dataclasses.replace(heldout, rules=None), ev.tensors, lists)
    out: dict = {"n_requests": int(lists.shape[0]), "n_lists": int(lists.shape[1])}
    if heldout is not None:
        out["agreement_within_request"] = within_request_spearman(scores["evaluator"], scores["heldout_evaluator"])
    if ev.world is None or ev.requests is None:
        return out
    G = lists.shape[1]
    truth = list_utilities(ev.world, ev.requests, lists.numpy())  # [R, G]
    out["spearman_within_request"] = {name: within_request_spearman(s, truth) for name, s in scores.items()}
    parts = [response_utilities(bare, lists[:, g], ev) for g in range(G)]
    out["evaluator_by_response"] = {
        r: within_request_spearman(*(np.stack([p[kind][r] for p in parts], axis=1) for kind in ("evaluator", "true")))
        for r in parts[0]["evaluator"]
    }
    out["by_dependency"] = by_dependency(ev.world, ev.requests, lists, truth, scores)
    released = select(scores["evaluator_with_rules"], truth)
    chosen = {"greedy": truth[:, 0], **{name: select(s, truth) for name, s in scores.items()}, "truth": truth.max(1)}
    out["selected_true_utility"] = {
        name: {"mean": float(u.mean()), "gain_vs_released": metrics.paired_difference(u, released)}
        for name, u in chosen.items()
    }
    return out


def by_dependency(
    world: World, requests: RequestSet, lists: Tensor, truth: np.ndarray, scores: dict[str, np.ndarray]
) -> dict:
    """``{part: {"within_request_std", "spearman_with_truth", <judge>: Spearman}}`` for each dependency's part of
    ``truth [R, G]`` (the utilities of ``lists [R, G, K]``) and for ``item_values`` (the utility with every
    dependency off); ``scores``: each judge's ``[R, G]``. See the module doc."""
    pages = lists.numpy()
    parts = {d: truth - list_utilities(world.without(d), requests, pages) for d in DEPENDENCIES}
    parts["item_values"] = list_utilities(world.without(*DEPENDENCIES), requests, pages)
    return {
        name: {
            "within_request_std": float(part.std(axis=1).mean()),
            "spearman_with_truth": within_request_spearman(part, truth),
            **{judge: within_request_spearman(s, part) for judge, s in scores.items()},
        }
        for name, part in parts.items()
    }
