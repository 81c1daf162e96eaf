"""Sampled feedback for shown pages: the generative story whose expectation ``utility.py`` computes.

Per slot: the user looks at slot k with probability ``o_k`` (exposure x side-by-side competition),
engages (clicks) with probability ``p_k``, then watches ``Gamma(shape, mean_watch / shape)`` seconds, and
watches to the end (a *long view*) with probability ``g_k`` (the item's completion rate).
Per page: with probability ``beta`` (intent_coverage) satisfaction is decided by whether the viewport
serves the user's intent (coverage path); otherwise by the one slot the user attends to, drawn from the
attention shares (attention path). See docs/world.md.
"""

from __future__ import annotations

import numpy as np

from dualrerank.world.requests import RequestSet
from dualrerank.world.utility import UtilityModel, intent_service, slot_model


def sample_responses(
    model: UtilityModel, req: RequestSet, pages: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """One draw of feedback for full pages ``[R, K]``: ``click, watch, long_view`` ([R, K]), ``satisfaction,
    reformulated`` ([R], 0/1)."""
    cfg = model.cfg
    R, K = pages.shape
    rows = np.arange(R)
    sm = slot_model(model, req, rows, pages)
    click = (rng.random((R, K)) < sm["look"]) & (rng.random((R, K)) < sm["engage"])
    shape = cfg.watch_shape
    watch = np.where(click, rng.gamma(shape, sm["mean_watch"] / shape), 0.0)
    long_view = click & (rng.random((R, K)) < sm["completion"])

    # Coverage path: the user means one intent; it is served if some viewport item of it engages.
    intent = _categorical(rng, req.intent_weight)  # [R]
    service = intent_service(req, rows, sm, cfg.viewport)[rows, :, intent]  # [R, K]
    served = (rng.random((R, K)) < service).any(1)
    sat_cov = served & (rng.random(R) < cfg.sat_prob)
    ref_cov = ~served & (rng.random(R) < cfg.reform_prob)

    # Attention path: one slot holds the user's attention; its item decides.
    share = sm["exposure"] / model.attention_norm
    leftover = np.clip(1.0 - share.sum(1, keepdims=True), 0.0, None)
    slot = _categorical(rng, np.concatenate([share, leftover], axis=1))  # K = attended nothing
    has = slot < K
    k = np.minimum(slot, K - 1)
    engaged = has & (rng.random(R) < sm["engage"][rows, k])
    completed = rng.random(R) < sm["completion"][rows, k]
    sat_att = engaged & completed & (rng.random(R) < cfg.sat_prob)
    ref_att = has & ~(engaged & (sm["on_intent"][rows, k] > 0)) & (rng.random(R) < cfg.reform_prob)

    coverage_path = rng.random(R) < cfg.intent_coverage
    return {
        "click": click.astype(np.int8),
        "watch": watch,
        "long_view": long_view.astype(np.int8),
        "satisfaction": np.where(coverage_path, sat_cov, sat_att).astype(np.int8),
        "reformulated": np.where(coverage_path, ref_cov, ref_att).astype(np.int8),
    }


def sampled_utility(model: UtilityModel, responses: dict[str, np.ndarray]) -> np.ndarray:
    """[R] realised utility of sampled feedback, in the same units as the true utility."""
    cfg = model.cfg
    return (
        responses["watch"].sum(1) / 60.0
        + cfg.sat_weight * responses["satisfaction"]
        - cfg.reform_weight * responses["reformulated"]
    )


def _categorical(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """[R] one draw per row of unnormalised non-negative ``probs`` [R, C]."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(probs.shape[0]) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(1), probs.shape[1] - 1)
