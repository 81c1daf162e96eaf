"""Shared set encoder: a permutation-equivariant Transformer over the candidate set (docs/method.md).

No positional encoding: the only order information is the upstream rank, given as a feature. Padded
candidates are masked in attention and zeroed in the output.
"""

from __future__ import annotations

from torch import Tensor, nn

from dualrerank.models.components import FeatureInput, SlateInputs, transformer_layers


class SetEncoder(nn.Module):
    """``SlateInputs -> (T [B, N, D], u [B, D])``: candidate representations and the context vector."""

    def __init__(
        self,
        n_item_features: int,
        n_context_features: int,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.inputs = FeatureInput(n_item_features, n_context_features, d_model)
        self.layers = transformer_layers(d_model, n_heads, n_layers, dropout)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: SlateInputs) -> tuple[Tensor, Tensor]:
        u = self.inputs.context(x)  # [B, D]
        h = self.inputs.items(x) + u[:, None, :]  # [B, N, D]
        h = self.norm(self.layers(h, src_key_padding_mask=x.pad_mask))
        return h.masked_fill(x.pad_mask[..., None], 0.0), u
