"""Does the learned evaluator rank pages like the true utility? Spearman on varied pages of held-out
requests (pooled, and within each request, which is what Best-of-N and RL rely on)."""

from __future__ import annotations

import numpy as np
import torch

from dualrerank import metrics
from dualrerank.evaluation.scoring import EvalSet, batched_scores, list_utilities
from dualrerank.world.policy import plackett_luce_pages


def varied_pages(upstream_score: np.ndarray, pad_mask: np.ndarray, k: int, g: int, seed: int) -> np.ndarray:
    """``[R, G, K]`` pages of varied sets and orders: Plackett-Luce samples at several temperatures."""
    rng = np.random.default_rng(seed)
    scores = np.where(pad_mask, -np.inf, upstream_score)
    temps = np.geomspace(0.3, 3.0, g)
    pages = np.stack([plackett_luce_pages(scores, k, t, rng) for t in temps], axis=1)
    return np.where(np.take_along_axis(pad_mask[:, None, :], pages, axis=2), -1, pages)


def evaluator_correlation(ev: EvalSet, g: int, seed: int) -> dict[str, dict[str, float]]:
    """Per judge: ``spearman_pooled`` and ``spearman_within_request`` (mean over requests)."""
    if ev.world is None or ev.requests is None or not ev.judges:
        return {}
    t = ev.tensors
    pages = varied_pages(t["upstream_score"].numpy(), t["pad_mask"].numpy(), ev.page_len, g, seed)
    R = pages.shape[0]
    truth = list_utilities(ev.world, ev.requests, pages)  # [R, G]
    out = {}
    for name, judge in ev.judges.items():
        pred = batched_scores(judge, t, torch.from_numpy(pages))
        within = [metrics.spearman(pred[r], truth[r]) for r in range(R)]
        out[name] = {
            "spearman_pooled": metrics.spearman(pred.ravel(), truth.ravel()),
            "spearman_within_request": float(np.nanmean(within)),
        }
    return out
