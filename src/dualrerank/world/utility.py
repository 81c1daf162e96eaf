"""Exact expected responses and true whole-page utility of any page (docs/world.md has the formulas).

A page is ``[P, L]`` candidate indices (``-1`` = empty slot) placed on absolute slots
``first_slot .. first_slot + L - 1`` of a dual-column feed. ``rows[P]`` says which request each page
belongs to, so many pages of one request (beam search, Best-of-N) need no copies of the request.

Structure that the oracle relies on: every dependency is local to a *screen* (``V`` slots, two rows):
redundancy acts within a screen, competition within a row, context on the previous slot, intent
coverage on the viewport (screen 0). So the utility of a page is a sum of screen terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualrerank.config.world import WorldConfig
from dualrerank.world.requests import RequestSet


@dataclass(frozen=True)
class UtilityModel:
    """The world's utility constants plus the topic-transition matrix."""

    cfg: WorldConfig
    transition: np.ndarray  # [T, T]

    @property
    def exposure(self) -> np.ndarray:
        """[K] probability that slot k is looked at: 1 in the viewport, decaying by row after it."""
        k = np.arange(self.cfg.page_len)
        rows_after = np.maximum(k // 2 - self.cfg.viewport // 2 + 1, 0)
        return self.cfg.exposure_decay**rows_after

    @property
    def attention_norm(self) -> float:
        return float(self.exposure.sum())


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def slot_model(
    model: UtilityModel,
    req: RequestSet,
    rows: np.ndarray,
    pages: np.ndarray,
    first_slot: int = 0,
    prev: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Per-slot latent probabilities for pages ``[P, L]`` starting at absolute slot ``first_slot``.

    ``prev[P]`` is the candidate on slot ``first_slot - 1`` (or -1), used only for its context effect.
    Pages must start on a screen boundary when ``L`` spans a screen, so that screen-local effects
    (redundancy, competition) see every item they depend on.
    Returns ``valid, engage (p_k), look (o_k), exposure (e_k)``, all ``[P, L]``, plus gathered latents.
    """
    cfg = model.cfg
    P, L = pages.shape
    if first_slot % 2:
        raise ValueError("pages must start on a row boundary (even first_slot)")
    valid = pages >= 0
    idx = np.where(valid, pages, 0)
    r = rows[:, None]
    topic, author, category = req.topic[r, idx], req.author[r, idx], req.category[r, idx]
    slots = first_slot + np.arange(L)

    logit = req.base_logit[r, idx].copy()
    if cfg.redundancy > 0:
        same_screen = (slots[:, None] // cfg.viewport) == (slots[None, :] // cfg.viewport)
        pair = same_screen & ~np.eye(L, dtype=bool)
        pair = pair[None] & valid[:, :, None] & valid[:, None, :]
        sim = np.where(
            author[:, :, None] == author[:, None, :],
            cfg.sim_author,
            np.where(
                topic[:, :, None] == topic[:, None, :],
                cfg.sim_topic,
                np.where(category[:, :, None] == category[:, None, :], cfg.sim_category, 0.0),
            ),
        )
        logit -= cfg.redundancy * (sim * pair).sum(-1)
    if cfg.context > 0:
        prev_topic = np.empty_like(topic)
        prev_valid = np.empty_like(valid)
        prev_topic[:, 1:], prev_valid[:, 1:] = topic[:, :-1], valid[:, :-1]
        if prev is None:
            prev_topic[:, 0], prev_valid[:, 0] = 0, False
        else:
            prev_topic[:, 0], prev_valid[:, 0] = req.topic[rows, np.maximum(prev, 0)], prev >= 0
        logit += cfg.context * np.where(prev_valid & valid, model.transition[prev_topic, topic], 0.0)
    engage = _sigmoid(logit)

    exposure = np.broadcast_to(model.exposure[slots], (P, L))
    look = exposure * valid
    kappa = min(cfg.competition * cfg.context, 1.0)
    if kappa > 0:  # side-by-side items share attention: a strong neighbour steals from a weak one
        partner = np.arange(L) ^ 1  # the other column of the same row (windows start on a row)
        inside = partner < L
        partner = np.minimum(partner, L - 1)
        p_other = np.where(inside[None] & valid[:, partner], engage[:, partner], 0.0)
        look = look * (1.0 - kappa * p_other / (engage + p_other))
    return {
        "valid": valid,
        "engage": engage,
        "look": look,
        "exposure": exposure * valid,
        "topic": topic,
        "mean_watch": req.mean_watch[r, idx] * req.watch_scale[rows][:, None],
        "completion": req.completion[r, idx],
        "on_intent": req.on_intent[r, idx],
        "slots": np.broadcast_to(slots, (P, L)),
    }


def intent_service(req: RequestSet, rows: np.ndarray, sm: dict[str, np.ndarray], viewport: int) -> np.ndarray:
    """[P, L, I] probability that slot k serves intent t for a user who means t (0 outside the viewport).

    ``q_kt = m_kt * min(1, p_k / w_t)``: an item's marginal engagement ``p_k`` comes from the users who
    mean its intent, so given intent ``t`` it engages with ``p_k / w_t``.
    """
    in_view = sm["valid"] & (sm["slots"] < viewport)
    weight = req.intent_weight[rows][:, None, :]  # [P, 1, I]
    match = (sm["topic"][:, :, None] == req.intent_topic[rows][:, None, :]) & (weight > 0)
    given = np.minimum(1.0, sm["engage"][:, :, None] / np.where(weight > 0, weight, 1.0))
    return match * given * in_view[:, :, None]


def coverage(req: RequestSet, rows: np.ndarray, sm: dict[str, np.ndarray], viewport: int) -> np.ndarray:
    """[P] probability that the viewport serves the user's intent: ``sum_t w_t (1 - prod_k (1 - q_kt))``."""
    miss = np.prod(1.0 - intent_service(req, rows, sm, viewport), axis=1)  # [P, I]
    return ((1.0 - miss) * req.intent_weight[rows]).sum(-1)


def page_terms(
    model: UtilityModel,
    req: RequestSet,
    rows: np.ndarray,
    pages: np.ndarray,
    first_slot: int = 0,
    prev: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Expected responses of the slots of ``pages`` and their utility contribution.

    Returns per slot ``click, watch`` (seconds), the attention-path satisfaction/reformulation
    contributions ``sat_att, ref_att`` ([P]), the coverage ``cov`` ([P], 0 if the window misses the
    viewport) and ``utility`` ([P]): the part of the true utility these slots contribute.
    """
    cfg = model.cfg
    sm = slot_model(model, req, rows, pages, first_slot, prev)
    click = sm["look"] * sm["engage"]
    watch = click * sm["mean_watch"]
    share = sm["exposure"] / model.attention_norm  # attention share of each slot, sums to 1 on a full page
    sat_att = (share * cfg.sat_prob * sm["engage"] * sm["completion"]).sum(-1)
    ref_att = (share * cfg.reform_prob * (1.0 - sm["engage"] * sm["on_intent"])).sum(-1)
    beta = cfg.intent_coverage
    touches_view = first_slot < cfg.viewport
    cov = coverage(req, rows, sm, cfg.viewport) if touches_view else np.zeros(len(rows))
    utility = (
        watch.sum(-1) / 60.0
        + (1.0 - beta) * (cfg.sat_weight * sat_att - cfg.reform_weight * ref_att)
        + (
            beta * (cfg.sat_weight * cfg.sat_prob * cov - cfg.reform_weight * cfg.reform_prob * (1.0 - cov))
            if touches_view
            else 0.0
        )
    )
    long_view = click * sm["completion"]
    return {
        "click": click,
        "watch": watch,
        "long_view": long_view,
        "sat_att": sat_att,
        "ref_att": ref_att,
        "cov": cov,
        "utility": utility,
    }


def expected_responses(model: UtilityModel, req: RequestSet, pages: np.ndarray) -> dict[str, np.ndarray]:
    """Exact expectations for full pages ``[R, K]`` of requests ``req`` (one page per request).

    Keys: ``click, watch, long_view`` ([R, K]), ``satisfaction, reformulated, utility`` ([R]).
    """
    rows = np.arange(len(req))
    t = page_terms(model, req, rows, pages)
    beta = model.cfg.intent_coverage
    return {
        "click": t["click"],
        "watch": t["watch"],
        "long_view": t["long_view"],
        "satisfaction": (1 - beta) * t["sat_att"] + beta * model.cfg.sat_prob * t["cov"],
        "reformulated": (1 - beta) * t["ref_att"] + beta * model.cfg.reform_prob * (1 - t["cov"]),
        "utility": t["utility"],
    }


def true_utility(model: UtilityModel, req: RequestSet, pages: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """[P] expected whole-page utility (watch-minutes) of full pages ``[P, K]``."""
    rows = np.arange(len(req)) if rows is None else rows
    return page_terms(model, req, rows, pages)["utility"]


def item_values(model: UtilityModel, req: RequestSet) -> np.ndarray:
    """[R, N] per-item value with every dependency switched off.

    With all strengths at 0 the utility is ``sum_k e_k v_i(k) + const``, so sorting by ``v`` is optimal
    (rearrangement inequality; ``e_k`` is non-increasing).
    """
    cfg = model.cfg
    a = 1.0 / (1.0 + np.exp(-req.base_logit))
    watch = a * req.mean_watch * req.watch_scale[:, None] / 60.0
    sat = cfg.sat_weight * cfg.sat_prob * a * req.completion
    ref = cfg.reform_weight * cfg.reform_prob * (1.0 - a * req.on_intent)
    return watch + (sat - ref) / model.attention_norm
