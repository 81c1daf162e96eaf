"""Rewards from logged feedback and the target lists supervised generators learn from (numpy)."""

from __future__ import annotations

import numpy as np

from dualrerank.data.schema import PAD_INDEX
from dualrerank.data.slates import SlateMeta, Slates


def weight_vector(names: list[str], weights: dict[str, float]) -> np.ndarray:
    """Weights aligned to ``names`` (0 for a column without a weight). A non-zero weight on a column the data lack
    is an error (validation reports it first); a zero weight is switched off."""
    unknown = sorted(n for n, w in weights.items() if n not in names and w != 0)
    if unknown:
        raise KeyError(f"reward weights name columns {unknown} absent from the data; columns are {names}")
    return np.array([weights.get(n, 0.0) for n in names], dtype=np.float32)


def item_reward(slates: Slates, meta: SlateMeta, weights: dict[str, float]) -> np.ndarray:
    """[R, N] per-item reward: weighted sum of the item's logged feedback (0 where not shown)."""
    return slates.feedback @ weight_vector(meta.feedback, weights)


def page_reward(slates: Slates, meta: SlateMeta, item_w: dict[str, float], page_w: dict[str, float]) -> np.ndarray:
    """[R] observed page reward: item rewards of the shown items + weighted request-level feedback."""
    page = np.nan_to_num(slates.page_feedback) @ weight_vector(meta.page_feedback, page_w)
    return item_reward(slates, meta, item_w).sum(1) + page


def build_targets(
    slates: Slates,
    meta: SlateMeta,
    item_w: dict[str, float],
    page_w: dict[str, float],
    kind: str,
    weight_temperature: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Target lists ``[R, K]`` (PAD_INDEX where the logged page is shorter) and request weights ``[R]``.

    ``reward_sorted``: the logged page reordered by observed per-item reward, ties keep logged order;
    ``logged``: the logged order; ``reward_weighted``: the logged order with weights
    ``exp(z / temperature)`` of the standardised page reward (normalised to mean 1).
    """
    page = slates.logged_page
    R = page.shape[0]
    weights = np.ones(R, dtype=np.float32)
    if kind == "logged":
        return page.copy(), weights
    if kind == "reward_weighted":
        pr = page_reward(slates, meta, item_w, page_w)
        z = (pr - pr.mean()) / max(float(pr.std()), 1e-6)
        w = np.exp(np.clip(z / weight_temperature, -10, 10))
        return page.copy(), (w / w.mean()).astype(np.float32)
    if kind == "reward_sorted":
        reward = item_reward(slates, meta, item_w)
        r = np.take_along_axis(reward, np.maximum(page, 0), axis=1)
        r = np.where(page >= 0, r, -np.inf)  # empty slots go last
        order = np.argsort(-r, axis=1, kind="stable")  # stable: ties keep the logged order
        out = np.take_along_axis(page, order, axis=1)
        return np.where(np.take_along_axis(page >= 0, order, axis=1), out, PAD_INDEX), weights
    raise KeyError(f"unknown target kind {kind!r}; expected reward_sorted, logged or reward_weighted")
