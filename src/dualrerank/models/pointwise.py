"""Score-and-sort baseline: a pointwise model of per-item reward on the same features (no list context).

Trained position-aware (PAL-style): ``E[reward | item, slot k] = f(item) * exp(b_k)`` with a learned
bias per logged slot (``b_1 = 0``), so the features explain the item and ``b_k`` the exposure of the
slot; items are ranked by ``f`` alone.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dualrerank.models.components import FeatureInput, SlateInputs


class PointwiseScorer(nn.Module):
    def __init__(self, n_item_features: int, n_context_features: int, d_model: int = 64, page_len: int = 10) -> None:
        super().__init__()
        self.inputs = FeatureInput(n_item_features, n_context_features, d_model)
        self.head = nn.Sequential(nn.GELU(), nn.Linear(d_model, d_model), nn.GELU(), nn.Linear(d_model, 1))
        self.slot_bias = nn.Parameter(torch.zeros(page_len))

    def forward(self, x: SlateInputs) -> Tensor:
        """``[B, N]`` ranking scores ``f`` (padding gets -inf)."""
        h = self.inputs.items(x) + self.inputs.context(x)[:, None, :]
        return self.head(h).squeeze(-1).masked_fill(x.pad_mask, float("-inf"))

    def expected_reward(self, scores: Tensor, slot: Tensor) -> Tensor:
        """Predicted reward of items shown on 0-based ``slot`` (same shape as ``scores``)."""
        bias = self.slot_bias - self.slot_bias[0]
        return scores * torch.exp(bias[slot.clamp(min=0, max=bias.shape[0] - 1)])
