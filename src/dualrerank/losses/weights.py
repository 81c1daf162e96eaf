"""Rank-decay position weights (docs/method.md; [ours] reconstruction).

Used to weight per-slot policy-gradient terms in LDRO and, optionally, the per-position KD terms (ω_k).
"""

from __future__ import annotations

import torch
from torch import Tensor

KINDS = ("log", "geometric", "uniform")


def rank_decay_weights(
    K: int, kind: str = "log", gamma: float = 0.8, viewport: int = 4, viewport_boost: float = 0.0
) -> Tensor:
    """Decreasing slot weights ``w: Tensor[K]`` (float32) normalised so that ``w.sum() == K``.

    With 1-based rank k: ``log``: ``1 / log2(k + 1)`` (DCG discount); ``geometric``: ``gamma^(k-1)``;
    ``uniform``: ones. Each is then multiplied by ``1 + viewport_boost · 1[k <= viewport]`` (a dual-column feed
    shows ``viewport`` = 4 videos first). Uniform weights with no boost are all ones.
    """
    if K < 1:
        raise ValueError(f"K must be >= 1, got {K}")
    if kind not in KINDS:
        raise ValueError(f"unknown rank-decay kind {kind!r}; valid: {', '.join(KINDS)}")
    if not gamma > 0:
        raise ValueError(f"gamma must be > 0, got {gamma}")
    if not 1 + viewport_boost > 0:
        raise ValueError(f"viewport_boost must be > -1, got {viewport_boost}")
    k = torch.arange(1, K + 1, dtype=torch.float64)
    if kind == "log":
        w = 1.0 / torch.log2(k + 1)
    elif kind == "geometric":
        w = gamma ** (k - 1)
    else:
        w = torch.ones(K, dtype=torch.float64)
    w = w * torch.where(k <= viewport, 1.0 + viewport_boost, 1.0)
    return (w * (K / w.sum())).to(torch.float32)
