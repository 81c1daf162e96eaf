"""The masked sequential policy over K-permutations, its decoders and its vectorized Gumbel-Max sampler.

Policy (docs/method.md, [ours] reconstruction): from item-to-position logits ``ℓ: [B, K, N]``

    π(σ) = Π_k softmax_{i ∈ avail_k}(ℓ[k, i] / τ)[σ_k],   avail_k = not padded and not in σ_<k.

A position ``k >= n_valid(b)`` (fewer valid candidates than K) is **empty**: decoders write ``PAD_INDEX`` there
and its log-probability is 0. Masked sequential argmax is the zero-noise limit of the sampler, so serving
(greedy / Best-of-N) and LDRO training use one and the same distribution.

Shapes: ``B`` requests, ``N`` candidates (padded), ``K`` positions, ``G`` samples per request.
``pad_mask: BoolTensor[B, N]`` is True on padded candidates. Logits are assumed finite on non-padded candidates;
padded candidates may hold any value (``±inf``, NaN), it is never read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor

from dualrerank.data.schema import PAD_INDEX

__all__ = [
    "available_mask",
    "gumbel_max_pages",
    "gumbel_max_sample",
    "keyed_uniforms",
    "masked_sequential_argmax",
    "position_valid",
    "pre_dedup_argmax",
    "prefix_masked_log_softmax",
    "request_seed",
    "sequence_log_prob",
]


def position_valid(pad_mask: Tensor, K: int) -> Tensor:
    """``BoolTensor[B, K]``: True where ``k < n_valid(b)``, the number of non-padded candidates of request b."""
    n_valid = (~pad_mask).sum(-1, keepdim=True)  # [B, 1]
    return torch.arange(K, device=pad_mask.device) < n_valid


def _first_position(prefix: Tensor, N: int) -> Tensor:
    """``LongTensor[..., N]``: first k with ``prefix[..., k] == i``, or K if item i never occurs (PAD ignored)."""
    K = prefix.shape[-1]
    first = torch.full((*prefix.shape[:-1], N + 1), K, dtype=torch.long, device=prefix.device)
    idx = torch.where(prefix == PAD_INDEX, N, prefix)  # PAD goes to a spare column N, dropped below
    k = torch.arange(K, device=prefix.device).expand_as(prefix)
    first.scatter_reduce_(-1, idx, k, reduce="amin")
    return first[..., :N]


def available_mask(pad_mask: Tensor, prefix: Tensor) -> Tensor:
    """Items available at each position given the items chosen before it.

    :param pad_mask: ``BoolTensor[B, N]``, True = padded candidate.
    :param prefix: ``LongTensor[B, K]`` (or ``[B, G, K]``) of chosen candidate indices; PAD_INDEX entries are ignored.
    :return: ``BoolTensor[B, K, N]`` (or ``[B, G, K, N]``): True where item i is not padded and not in
        ``prefix[..., :k]``.
    """
    B, N = pad_mask.shape
    K = prefix.shape[-1]
    first = _first_position(prefix, N)  # [B, (G,) N]
    ks = torch.arange(K, device=prefix.device)[:, None]  # [K, 1]
    pad = pad_mask.view(B, *([1] * (prefix.dim() - 2)), 1, N)  # [B, (1,) 1, N]
    return ~pad & (first.unsqueeze(-2) >= ks)


def prefix_masked_log_softmax(logits: Tensor, pad_mask: Tensor, prefix: Tensor, temperature: float = 1.0) -> Tensor:
    """Log-softmax of ``logits / τ`` over the items available at each position (docs/method.md).

    :param logits: ``Tensor[B, K, N]``, the logits of step k computed given ``prefix[:, :k]``.
    :param pad_mask: ``BoolTensor[B, N]``.
    :param prefix: ``LongTensor[B, K]`` (or ``[B, G, K]``: logits are shared by the G lists).
    :return: ``Tensor[B, K, N]`` (or ``[B, G, K, N]``); unavailable entries are ``-inf``. A position with no
        available item (an empty position, ``k >= n_valid``) is all ``-inf``: callers mask it with
        ``position_valid`` or ``prefix != PAD_INDEX``. Never NaN, and gradients stay finite.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    avail = available_mask(pad_mask, prefix)
    scaled = logits / temperature
    if prefix.dim() == 3:
        scaled = scaled.unsqueeze(1)  # [B, 1, K, N]
    masked = scaled.masked_fill(~avail, float("-inf"))
    # an all-unavailable row would give (-inf) - (-inf) = NaN: give it a finite row, then blank it out
    masked = masked.masked_fill(~avail.any(-1, keepdim=True), 0.0)
    return (masked - masked.logsumexp(-1, keepdim=True)).masked_fill(~avail, float("-inf"))


def sequence_log_prob(logits: Tensor, pad_mask: Tensor, pages: Tensor, temperature: float = 1.0) -> Tensor:
    """Differentiable per-position log-probabilities of given lists under π (recomputed with gradients in RL).

    :param logits: ``Tensor[B, K, N]``; :param pad_mask: ``BoolTensor[B, N]``.
    :param pages: ``LongTensor[B, G, K]`` of candidate indices, PAD_INDEX at empty positions.
    :return: ``Tensor[B, G, K]``: ``log softmax_{avail_k}(ℓ[k]/τ)[pages[..., k]]``, 0 where the page holds PAD_INDEX.
        Sums over K to ``log π(page)``. A page repeating an item or holding a padded one gets ``-inf``.
    """
    logp = prefix_masked_log_softmax(logits, pad_mask, pages, temperature)  # [B, G, K, N]
    chosen = logp.gather(-1, pages.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # [B, G, K]
    return torch.where(pages == PAD_INDEX, torch.zeros_like(chosen), chosen)


def _decode(scores: Tensor, pad_mask: Tensor) -> Tensor:
    """K masked argmaxes: ``scores: [B, G, K, N]`` -> ``LongTensor[B, G, K]``, PAD_INDEX at empty positions."""
    B, G, K, N = scores.shape
    # padded entries -> 0 (their value, even ±inf or NaN, is never read); a -inf logit on a valid item -> the
    # lowest finite float, so it still beats the -inf of an unavailable item
    scores = scores.masked_fill(pad_mask[:, None, None, :], 0.0).clamp_min(torch.finfo(scores.dtype).min)
    blocked = torch.zeros(B, G, N, dtype=scores.dtype, device=scores.device)
    blocked.masked_fill_(pad_mask[:, None, :], float("-inf"))  # [B, G, N]: -inf on padded and taken items
    chosen = []
    for k in range(K):
        idx = (scores[:, :, k] + blocked).argmax(-1, keepdim=True)  # [B, G, 1]
        blocked.scatter_(-1, idx, float("-inf"))  # at an empty position everything is blocked already
        chosen.append(idx)
    pages = torch.cat(chosen, dim=-1)  # [B, G, K]
    return pages.masked_fill_(~position_valid(pad_mask, K)[:, None, :], PAD_INDEX)


@torch.no_grad()
def masked_sequential_argmax(logits: Tensor, pad_mask: Tensor) -> Tensor:
    """Greedy NAR decoding: ``σ_k = argmax_{i ∈ avail_k} ℓ[k, i]`` for k = 1..K (docs/method.md).

    K cheap masked argmaxes, no network pass. :param logits: ``Tensor[B, K, N]``; :param pad_mask: ``BoolTensor[B, N]``.
    :return: ``LongTensor[B, K]``, distinct non-padded items, PAD_INDEX at empty positions (``k >= n_valid``).
    """
    return _decode(logits.unsqueeze(1), pad_mask).squeeze(1)


@torch.no_grad()
def pre_dedup_argmax(logits: Tensor, pad_mask: Tensor) -> Tensor:
    """Per-position argmax over non-padded items, ignoring the other positions (the ranking-collapse diagnostic).

    :return: ``LongTensor[B, K]``; items may repeat across positions; PAD_INDEX at empty positions.
    """
    K = logits.shape[1]
    idx = logits.masked_fill(pad_mask[:, None, :], float("-inf")).argmax(-1)  # [B, K]
    return torch.where(position_valid(pad_mask, K), idx, PAD_INDEX)


@torch.no_grad()
def gumbel_max_pages(
    logits: Tensor,
    pad_mask: Tensor,
    n_samples: int,
    temperature: float = 1.0,
    include_greedy: bool = True,
    generator: torch.Generator | None = None,
    seeds: Sequence[int] | None = None,
) -> Tensor:
    """Vectorized masked Gumbel-Max: G exact samples from π per request (docs/method.md, Kool et al. 2019).

    All Gumbel noise ``[B, G, K, N]`` is drawn at once; then K masked argmaxes over ``[B, G, N]``. Gumbel-Max over
    the still-available items samples their renormalised softmax, so each list is an exact draw from π at τ.
    ``argmax(ℓ/τ + g) = argmax(ℓ + τ·g)``: we use the right side so that the zero-noise sample 0 is bit-for-bit
    ``masked_sequential_argmax``.

    :param logits: ``Tensor[B, K, N]``; :param pad_mask: ``BoolTensor[B, N]``.
    :param n_samples: G. :param include_greedy: sample 0 gets zero noise (the greedy list).
    :param generator: ``torch.Generator`` on the logits' device, for reproducible draws.
    :param seeds: one seed per request instead of ``generator``: request b's noise comes from its own seed alone
        (``keyed_uniforms``), so its lists do not depend on the batch it is in or on the padding.
    :return: ``LongTensor[B, G, K]``, PAD_INDEX at empty positions. The lists only: serving, which needs no
        probabilities, stops here; ``gumbel_max_sample`` adds their log-probabilities.
    """
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    B, K, N = logits.shape
    if seeds is None:
        u = torch.rand(B, n_samples, K, N, dtype=logits.dtype, device=logits.device, generator=generator)
    else:
        u = keyed_uniforms(seeds, pad_mask, n_samples, K).to(logits.device, logits.dtype)
    gumbel = -torch.log(-torch.log(u.clamp_min_(torch.finfo(logits.dtype).tiny)))  # [B, G, K, N]
    if include_greedy:
        gumbel[:, 0] = 0.0
    return _decode(logits.unsqueeze(1) + temperature * gumbel, pad_mask)  # [B, G, K]


def request_seed(seed: int, key: str) -> int:
    """A request's own seed: a stable hash of the reranker's ``seed`` and the request's ``key`` (its id)."""
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1  # below 2**63: any torch.Generator takes it


def keyed_uniforms(seeds: Sequence[int], pad_mask: Tensor, n_samples: int, K: int) -> Tensor:
    """``[B, G, K, N]`` float32 uniforms in [0, 1): row b drawn from a generator seeded with ``seeds[b]`` over its
    valid candidates only, in their order (padding gets 0.5, never read). A request's draws are thus the same in any
    batch and under any padding, and its first ``g`` lists are the same for any ``G >= g``."""
    B, N = pad_mask.shape
    if len(seeds) != B:
        raise ValueError(f"one seed per request: {len(seeds)} seeds for {B} requests")
    u = torch.empty(B, n_samples, K, N)
    for b, seed in enumerate(seeds):
        valid = torch.nonzero(~pad_mask[b].cpu()).flatten()
        draws = torch.rand(n_samples, K, len(valid), generator=torch.Generator().manual_seed(int(seed)))
        if len(valid) == N:
            u[b] = draws
        else:
            u[b] = 0.5
            u[b, :, :, valid] = draws
    return u


@torch.no_grad()
def gumbel_max_sample(
    logits: Tensor,
    pad_mask: Tensor,
    n_samples: int,
    temperature: float = 1.0,
    include_greedy: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """``gumbel_max_pages`` plus the exact log-probability of every choice.

    :return: ``pages: LongTensor[B, G, K]`` (PAD_INDEX at empty positions) and ``logp: Tensor[B, G, K]``, the exact
        masked log-softmax at τ of each chosen item (0 at empty positions). Neither carries gradient: recompute
        ``logp`` with ``sequence_log_prob`` where gradients are needed.
    """
    pages = gumbel_max_pages(logits, pad_mask, n_samples, temperature, include_greedy, generator)
    return pages, sequence_log_prob(logits, pad_mask, pages, temperature)
