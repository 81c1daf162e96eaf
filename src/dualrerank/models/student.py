"""NAR student: a NAR4Rec-style matching model that emits item-to-position logits in one pass.

``K`` learned position embeddings (+ context) -> non-causal self-attention among positions ->
cross-attention to the candidate representations ``T`` -> ``l_k(i) = <W_p H_k, W_c T_i> / sqrt(D)``.
Decoding is a masked sequential argmax over positions (``dualrerank.sampling``): K cheap tensor ops,
no network passes, the zero-noise limit of the Gumbel-Max sampler.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from dualrerank.models.components import SlateInputs, transformer_layers
from dualrerank.models.encoder import SetEncoder


class NARStudent(nn.Module):
    def __init__(
        self,
        encoder: SetEncoder,
        d_model: int = 64,
        n_heads: int = 4,
        n_layers: int = 2,
        page_len: int = 10,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.page_len = page_len
        self.positions = nn.Parameter(torch.randn(page_len, d_model) * 0.02)
        self.decoder = transformer_layers(d_model, n_heads, n_layers, dropout, decoder=True)
        self.norm = nn.LayerNorm(d_model)
        self.w_p = nn.Linear(d_model, d_model)
        self.w_c = nn.Linear(d_model, d_model)

    def forward(self, x: SlateInputs) -> Tensor:
        """Item-to-position logits ``[B, K, N]`` (unmasked) in one forward pass."""
        t, u = self.encoder(x)
        queries = self.positions[None] + u[:, None, :]  # [B, K, D]
        h = self.norm(self.decoder(queries, t, memory_key_padding_mask=x.pad_mask))
        return torch.einsum("bkd,bnd->bkn", self.w_p(h), self.w_c(t)) / math.sqrt(h.shape[-1])
