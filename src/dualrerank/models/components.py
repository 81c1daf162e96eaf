"""Building blocks shared by every network: the model inputs and feature normalisation.

Notation (see ``dualrerank.data.schema``): ``B`` requests, ``N`` candidates, ``K`` slots, ``G`` lists per
request, ``D`` model width, ``F`` item features, ``Fc`` context features.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

N_EXTRA_ITEM_INPUTS = 2  # upstream score and log upstream rank are appended to the item features
SAME_IDENTITY = 1e-6  # identity features (one-hot category, exact author embedding) equal within this


class SlateInputs(NamedTuple):
    """What every model sees of a request. Padding: ``pad_mask`` True."""

    item_features: Tensor  # [B, N, F]
    context: Tensor  # [B, Fc]
    upstream_score: Tensor  # [B, N]
    upstream_rank: Tensor  # [B, N], 1-based (0 on padding)
    pad_mask: Tensor  # [B, N] bool

    @classmethod
    def from_batch(cls, batch: dict[str, Tensor]) -> SlateInputs:
        return cls(*(batch[name] for name in cls._fields))

    def expand(self, g: int) -> SlateInputs:
        """Repeat every request ``g`` times along the batch axis: ``[B, ...] -> [B * g, ...]``."""
        return SlateInputs(*(t.repeat_interleave(g, dim=0) for t in self))


class FeatureInput(nn.Module):
    """Normalised item and context features -> ``[B, N, D]`` item tokens and a ``[B, D]`` context vector.

    Normalisation statistics live in buffers set from the training split (``set_normalization``), so a
    saved model takes raw features at serving time.
    """

    item_mean: Tensor
    item_std: Tensor
    ctx_mean: Tensor
    ctx_std: Tensor

    def __init__(self, n_item_features: int, n_context_features: int, d_model: int) -> None:
        super().__init__()
        f = n_item_features + N_EXTRA_ITEM_INPUTS
        self.register_buffer("item_mean", torch.zeros(f))
        self.register_buffer("item_std", torch.ones(f))
        self.register_buffer("ctx_mean", torch.zeros(n_context_features))
        self.register_buffer("ctx_std", torch.ones(n_context_features))
        self.item_mlp = nn.Sequential(nn.Linear(f, d_model), nn.GELU(), nn.Linear(d_model, d_model))
        self.ctx_mlp = nn.Sequential(
            nn.Linear(max(n_context_features, 1), d_model), nn.GELU(), nn.Linear(d_model, d_model)
        )

    @staticmethod
    def raw_item_inputs(x: SlateInputs) -> Tensor:
        """[B, N, F + 2]: item features, upstream score, log upstream rank."""
        log_rank = torch.log(x.upstream_rank.clamp(min=1.0))
        return torch.cat([x.item_features, x.upstream_score[..., None], log_rank[..., None]], dim=-1)

    @torch.no_grad()
    def set_normalization(self, item: Tensor, context: Tensor, pad_mask: Tensor) -> None:
        """Fit the buffers on training tensors ``item [R, N, F+2]``, ``context [R, Fc]``."""
        real = item[~pad_mask]
        self.item_mean.copy_(real.mean(0))
        self.item_std.copy_(real.std(0).clamp(min=1e-3))
        if context.shape[1]:
            self.ctx_mean.copy_(context.mean(0))
            self.ctx_std.copy_(context.std(0).clamp(min=1e-3))

    def items(self, x: SlateInputs) -> Tensor:
        """[B, N, D] item tokens (padding rows are finite; callers mask them)."""
        return self.item_mlp((self.raw_item_inputs(x) - self.item_mean) / self.item_std)

    def context(self, x: SlateInputs) -> Tensor:
        """[B, D] context vector."""
        ctx = (x.context - self.ctx_mean) / self.ctx_std
        if ctx.shape[1] == 0:  # data without context columns
            ctx = torch.zeros(ctx.shape[0], 1, dtype=ctx.dtype, device=ctx.device)
        return self.ctx_mlp(ctx)


def transformer_layers(d_model: int, n_heads: int, n_layers: int, dropout: float, decoder: bool = False) -> nn.Module:
    """Pre-norm Transformer encoder (or decoder, with cross-attention) layers, batch-first."""
    kwargs = dict(
        d_model=d_model,
        nhead=n_heads,
        dim_feedforward=2 * d_model,
        dropout=dropout,
        activation="gelu",
        batch_first=True,
        norm_first=True,
    )
    if decoder:
        return nn.TransformerDecoder(nn.TransformerDecoderLayer(**kwargs), n_layers)  # type: ignore[arg-type]
    return nn.TransformerEncoder(nn.TransformerEncoderLayer(**kwargs), n_layers, enable_nested_tensor=False)  # type: ignore[arg-type]


def gather_items(tokens: Tensor, pages: Tensor) -> Tensor:
    """``tokens [B, N, D]``, ``pages [B, G, K]`` (-1 = empty) -> ``[B, G, K, D]`` (zeros on empty slots)."""
    B, N, D = tokens.shape
    rows = pages.clamp(min=0) + N * torch.arange(B, device=pages.device)[:, None, None]
    out = tokens.reshape(B * N, D).index_select(0, rows.reshape(-1)).reshape(*pages.shape, D)  # (faster than gather)
    return out.masked_fill((pages < 0)[..., None], 0.0)


class PageView(NamedTuple):
    """The item-level inputs of a page's interaction terms, held on whichever rows are fewer: a request's candidates
    (Best-of-N: ``G`` lists share ``N`` candidates, so ``N * N`` pairs beat ``G * K * K``) or each list's own slots
    (training: one logged page among many candidates). Per-item and per-pair work runs once on the rows, and
    ``items`` / ``pairs`` place it on the slots: the same values either way."""

    raw: Tensor  # [S, M, F] raw item features of the rows
    tokens: Tensor  # [S, M, D] item tokens of the rows
    rows: Tensor  # [S, G', K] the row on each slot (-1 = empty), S * G' = B * G
    on_slots: bool = False  # the rows are each list's own slots (G' = 1): placing them is the identity

    @classmethod
    def of(cls, raw: Tensor, tokens: Tensor, pages: Tensor) -> PageView:
        """Candidates ``raw [B, N, F]``, ``tokens [B, N, D]`` and lists ``pages [B, G, K]``."""
        B, G, K = pages.shape
        if raw.shape[1] ** 2 <= G * K * K:
            return cls(raw, tokens, pages)
        flat = (B * G, K, -1)
        empty = (pages < 0).reshape(B * G, K)
        return cls.slots(gather_items(raw, pages).reshape(flat), gather_items(tokens, pages).reshape(flat), empty)

    @classmethod
    def slots(cls, raw: Tensor, tokens: Tensor, empty: Tensor) -> PageView:
        """Each list's own slots as its rows: ``raw [L, K, F]``, ``tokens [L, K, D]``, ``empty [L, K]``."""
        rows = torch.arange(raw.shape[1], device=raw.device).expand_as(empty).masked_fill(empty, -1)
        return cls(raw, tokens, rows[:, None], on_slots=True)

    @property
    def empty(self) -> Tensor:
        """``[S * G', K]`` True on empty slots."""
        return (self.rows < 0).flatten(0, 1)

    def items(self, values: Tensor) -> Tensor:
        """Row values ``[S, M, ...]`` -> slot values ``[S * G', K, ...]`` (zeros on empty slots)."""
        if values.dim() == 2:
            return self.items(values[..., None])[..., 0]
        if self.on_slots:
            return values.masked_fill(self.empty[..., None], 0.0)
        return gather_items(values, self.rows).flatten(0, 1)

    def pairs(self, values: Tensor) -> Tensor:
        """Row-pair values ``[S, M, M, H]`` -> slot-pair values ``[S * G', K, K, H]`` (empty slots: any row's)."""
        if self.on_slots:
            return values
        S, M, _, H = values.shape
        i = self.rows.clamp(min=0)
        first = M * M * torch.arange(S, device=values.device)[:, None, None, None]
        both = first + M * i[..., :, None] + i[..., None, :]  # [S, G', K, K]: the pair (a, b) of rows of request s
        return values.reshape(S * M * M, H).index_select(0, both.reshape(-1)).reshape(-1, *both.shape[-2:], H)


def identity_pairs(raw: Tensor, groups: list[list[int]]) -> Tensor:
    """``raw [..., M, F]`` -> ``[..., M, M, len(groups)]``: 1.0 where two rows hold equal features, per column group."""
    same = [same_identity(raw[..., g]) for g in groups]
    if not same:
        return raw.new_zeros(*raw.shape[:-1], raw.shape[-2], 0)
    return torch.stack(same, dim=-1).to(raw.dtype)


def same_identity(identity: Tensor) -> Tensor:
    """``identity [..., K, F]`` -> ``[..., K, K]`` bool: slots ``i`` and ``j`` hold equal identity vectors."""
    return (identity[..., :, None, :] - identity[..., None, :, :]).abs().amax(-1) < SAME_IDENTITY


def kmeans(x: Tensor, k: int, iters: int = 30, seed: int = 0) -> Tensor:
    """``x [M, F]`` -> ``[k, F]`` centroids by Lloyd's algorithm from a k-means++ start (deterministic in ``seed``).
    A cluster left empty is moved to the point farthest from its centroid."""
    if len(x) < k:
        raise ValueError(f"k-means needs at least {k} points, got {len(x)}")
    g = torch.Generator().manual_seed(seed)
    x = x.double()
    centroids = x[torch.randint(len(x), (1,), generator=g)]
    while len(centroids) < k:  # k-means++: the next centre drawn in proportion to the squared distance
        d2 = torch.cdist(x, centroids).amin(1).square()
        centroids = torch.cat([centroids, x[torch.multinomial(d2 / d2.sum(), 1, generator=g)]])
    for _ in range(iters):
        dist = torch.cdist(x, centroids)
        assign = dist.argmin(1)
        counts = torch.bincount(assign, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)
        new = sums / counts.clamp(min=1)[:, None]
        for c in torch.nonzero(counts == 0)[:, 0].tolist():
            new[c] = x[dist.gather(1, assign[:, None])[:, 0].argmax()]
        if torch.allclose(new, centroids):
            break
        centroids = new
    return centroids.float()


def nearest(x: Tensor, centroids: Tensor) -> Tensor:
    """``x [..., F]``, ``centroids [C, F]`` -> ``[...]`` index of the nearest centroid."""
    d2 = (x[..., None, :] - centroids).square().sum(-1)
    return d2.argmin(-1)
