"""The logging policy: score-and-sort on the upstream score with Plackett-Luce exploration."""

from __future__ import annotations

import numpy as np


def plackett_luce_pages(scores: np.ndarray, k: int, temperature: float, rng: np.random.Generator) -> np.ndarray:
    """[R, k] pages sampled without replacement with P(next = i) proportional to exp(score_i / temperature).

    Uses the Gumbel-top-k trick: the top-k of ``score / temperature + Gumbel noise`` is an exact
    Plackett-Luce sample. ``temperature -> 0`` gives the deterministic upstream order.
    """
    noisy = scores if temperature <= 0 else scores / temperature + rng.gumbel(size=scores.shape)
    return np.argsort(-noisy, axis=1, kind="stable")[:, :k]
