"""Seeded inputs for the policy, loss and sampler tests: padded candidates, n_valid < K, one-candidate requests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from dualrerank.data.schema import PAD_INDEX

Inputs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def make_inputs(seed: int = 0, K: int = 4, N: int = 7, dtype: torch.dtype = torch.float64) -> Inputs:
    """``(logits [B, K, N], pad_mask [B, N], target [B, K])`` for B = 4 requests with n_valid = N, K + 1, K - 1, 1.

    Padded candidates sit at random indices (not only at the tail) and hold junk logits; ``target`` is a random
    ordering of valid candidates, PAD_INDEX at the empty positions k >= n_valid.
    """
    g = torch.Generator().manual_seed(seed)
    n_valid = [N, K + 1, K - 1, 1]
    B = len(n_valid)
    logits = 2.0 * torch.randn(B, K, N, generator=g, dtype=dtype)
    pad_mask = torch.ones(B, N, dtype=torch.bool)
    target = torch.full((B, K), PAD_INDEX, dtype=torch.long)
    for b, n in enumerate(n_valid):
        valid = torch.randperm(N, generator=g)[:n]
        pad_mask[b, valid] = False
        order = valid[torch.randperm(n, generator=g)][:K]
        target[b, : len(order)] = order
    logits = logits.masked_fill(pad_mask[:, None, :], 50.0)  # junk: padded items would win if read
    return logits, pad_mask, target


def add_junk_padding(logits: torch.Tensor, pad_mask: torch.Tensor, extra: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """Append ``extra`` padded candidates holding +inf, -inf, NaN and a huge value (any logits must be ignored)."""
    B, K, _ = logits.shape
    junk = torch.tensor([float("inf"), float("-inf"), float("nan"), 1e30], dtype=logits.dtype).repeat(extra)[:extra]
    logits = torch.cat([logits, junk.expand(B, K, extra)], dim=-1)
    pad_mask = torch.cat([pad_mask, torch.ones(B, extra, dtype=torch.bool)], dim=-1)
    return logits, pad_mask


@pytest.fixture
def inputs() -> Callable[..., Inputs]:
    return make_inputs


@pytest.fixture
def junk_padding() -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    return add_junk_padding
