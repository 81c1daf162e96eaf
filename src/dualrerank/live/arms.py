"""Which arm serves a user in the live loop: a deterministic split by user id.

A user keeps one arm for the whole loop (their pages all come from one model lineage, so an arm's logged outcomes
are its own), and the split does not depend on which or how many requests arrive: each user id is hashed once with
a salt (``blake2b``, stable across processes and Python versions, unlike ``hash``) to a point in ``[0, 1)``, and the
arms own consecutive intervals in proportion to their shares.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

import numpy as np

ARMS = ("control", "ldro", "grpo")


def unit_hash(key: str, salt: str) -> float:
    """A stable pseudo-random point in ``[0, 1)`` for ``key``."""
    digest = hashlib.blake2b(f"{salt}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def assign_arms(
    users: Iterable[object], arms: Sequence[str] = ARMS, shares: Sequence[float] | None = None, salt: str = "arms"
) -> np.ndarray:
    """``[R]`` the arm of each user (ids of any type, compared as strings); equal shares unless ``shares``."""
    weights = np.ones(len(arms)) if shares is None else np.asarray(shares, dtype=float)
    if len(arms) == 0 or len(weights) != len(arms) or (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"arms {list(arms)} need one non-negative share each, not all zero; got {list(weights)}")
    bounds = np.cumsum(weights) / weights.sum()
    points = np.array([unit_hash(str(u), salt) for u in users])
    index = np.minimum(np.searchsorted(bounds, points, side="right"), len(arms) - 1)
    return np.asarray(arms, dtype=object)[index]
