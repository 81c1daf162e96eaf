"""Scores of pages on held-out requests: true utility (when a world exists), logged-label metrics, NDCG on
graded labels (LETOR data), and the training and held-out evaluators' utilities (to expose reward hacking)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from dualrerank import metrics
from dualrerank.models.components import SlateInputs
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.reranking import Judge, RuleScorer
from dualrerank.world.logs import WORLD_RESPONSES
from dualrerank.world.requests import RequestSet
from dualrerank.world.simulator import World


@dataclass
class EvalSet:
    """Held-out requests with everything needed to score pages."""

    tensors: dict[str, Tensor]  # model inputs
    item_reward: np.ndarray  # [R, N] logged per-item reward (0 where not shown)
    viewport: int
    page_len: int
    world: World | None = None
    requests: RequestSet | None = None  # the world's view of the same requests, same candidate order
    judges: dict[str, Judge] | None = None  # name -> judge (evaluator utility)
    relevance: np.ndarray | None = None  # [R, N] graded labels (LETOR data): ground truth, evaluation only


def batched_scores(
    judge: Judge | RuleScorer, tensors: dict[str, Tensor], pages: Tensor, batch: int = 256
) -> np.ndarray:
    """``[R, G]`` scores of ``pages [R, G, K]`` by a judge, or by any ``(inputs, pages) -> [B, G]`` scorer."""
    score = judge.score if isinstance(judge, Judge) else judge
    out = []
    for s in range(0, len(pages), batch):
        x = SlateInputs.from_batch({k: v[s : s + batch] for k, v in tensors.items()})
        with torch.inference_mode():
            out.append(score(x, pages[s : s + batch]))
    return torch.cat(out).numpy()


def response_utilities(judge: Judge, pages: Tensor, ev: EvalSet, batch: int = 256) -> dict[str, dict[str, np.ndarray]]:
    """Where a page's utility comes from, per weighted response: ``{"evaluator": {name: [R]}, "true": {name: [R]}}``,
    each the response's weight times its expected value summed over the slots of ``pages [R, K]`` (utility units),
    as ``judge``'s evaluator predicts it and as the world's exact expectation has it. Only responses with a
    non-zero weight; ``true`` is empty without a world. A diagnostic of reward hacking: which response a policy's
    evaluator gain comes from, and whether the truth agrees."""
    names, weights = list(judge.responses), torch.cat([judge.item_weights, judge.page_weights])
    evaluator = judge.evaluator
    if not isinstance(evaluator, ListEvaluator):
        raise TypeError(
            "the response breakdown reads the evaluator's responses: give the torch judge, not an exported one"
        )
    if len(names) != len(weights):
        raise ValueError(f"the judge names {len(names)} responses and weights {len(weights)}")
    L = len(judge.item_weights)
    parts = []
    for s in range(0, len(pages), batch):
        x = SlateInputs.from_batch({k: v[s : s + batch] for k, v in ev.tensors.items()})
        with torch.inference_mode():
            item, page = evaluator.expected(x, pages[s : s + batch, None, :])  # [b, 1, K, L], [b, 1, P]
        parts.append(torch.cat([item[:, 0].sum(1), page[:, 0]], dim=-1))  # [b, L + P]
    predicted = (torch.cat(parts) * weights).numpy()
    active = [j for j, w in enumerate(weights.tolist()) if w != 0.0]
    out: dict[str, dict[str, np.ndarray]] = {"evaluator": {names[j]: predicted[:, j] for j in active}, "true": {}}
    if ev.world is not None and ev.requests is not None:
        expected = ev.world.expected(ev.requests, pages.numpy())
        for j in active:
            value = expected[WORLD_RESPONSES[names[j]]]
            out["true"][names[j]] = weights[j].item() * (value.sum(1) if j < L else value)
    return out


def page_metrics(pages: Tensor, ev: EvalSet) -> dict[str, float | list[float] | None]:
    """Contract fields of ``metrics.json`` for one policy's pages ``[R, K]`` (true utility null without a world)."""
    p = pages.numpy()
    out: dict[str, float | list[float] | None] = {"true_utility": None, "true_utility_ci95": None}
    if ev.world is not None and ev.requests is not None:
        u = ev.world.utility(ev.requests, p)
        mean, half = metrics.mean_ci95(u)
        out.update(true_utility=mean, true_utility_ci95=[mean - half, mean + half])
    out["ndcg_at_k"] = logged_ndcg(pages, ev)
    if ev.relevance is not None:  # the LETOR convention: gain 2^grade - 1, ideal over the candidates
        gains = np.exp2(ev.relevance.astype(float)) - 1.0
        out["graded_ndcg_at_k"] = float(np.nanmean(metrics.ndcg_at_k(p, gains, ev.page_len)))
    out["recall_at_v"] = float(np.nanmean(metrics.recall_at_k(p, ev.item_reward > 0, ev.viewport)))
    for name, judge in (ev.judges or {}).items():
        out[f"{name}_utility"] = float(batched_scores(judge, ev.tensors, pages[:, None, :]).mean())
    return out


def shown_candidates(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """The same requests with only the items of their logged page as candidates (the others padded): the input of
    the standard reranking evaluation, where every candidate has logged feedback. A request with no logged item
    keeps its candidates (it has no label to score anyway)."""
    page, pad = tensors["logged_page"], tensors["pad_mask"]
    shown = torch.zeros_like(pad)
    rows, slots = torch.nonzero(page >= 0, as_tuple=True)
    shown[rows, page[rows, slots]] = True
    keep = shown.any(1, keepdim=True)
    return {**tensors, "pad_mask": torch.where(keep, pad | ~shown, pad)}


def logged_ndcg(pages: Tensor, ev: EvalSet) -> float:
    """Mean NDCG@K of ``pages [R, K]`` with the logged per-item reward as gain (requests without any skipped)."""
    return float(np.nanmean(metrics.ndcg_at_k(pages.numpy(), ev.item_reward, ev.page_len)))


def list_utilities(world: World, requests: RequestSet, lists: np.ndarray) -> np.ndarray:
    """``[R, G]`` the world's exact expected utility of ``lists [R, G, K]``: ``G`` pages per request."""
    return np.stack([world.utility(requests, lists[:, g]) for g in range(lists.shape[1])], axis=1)


def true_utilities(pages: Tensor, ev: EvalSet) -> np.ndarray | None:
    if ev.world is None or ev.requests is None:
        return None
    return ev.world.utility(ev.requests, pages.numpy())
