"""Rank-decay weights: hand values, normalisation to K, viewport boost."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from dualrerank.losses import rank_decay_weights


def normalised(raw: list[float]) -> torch.Tensor:
    w = torch.tensor(raw, dtype=torch.float64)
    return (w * len(raw) / w.sum()).float()


def test_log_weights_hand_values():
    assert_close(rank_decay_weights(3, "log"), normalised([1.0, 1 / math.log2(3), 0.5]))


def test_geometric_weights_hand_values():
    assert_close(rank_decay_weights(4, "geometric", gamma=0.5), normalised([1.0, 0.5, 0.25, 0.125]))


def test_uniform_is_ones_and_boost_hits_the_viewport_only():
    assert_close(rank_decay_weights(6, "uniform"), torch.ones(6))
    assert_close(rank_decay_weights(6, "uniform", viewport=4, viewport_boost=1.0), normalised([2, 2, 2, 2, 1, 1]))
    assert_close(
        rank_decay_weights(5, "log", viewport=2, viewport_boost=0.5),
        normalised([1.5, 1.5 / math.log2(3), 0.5, 1 / math.log2(5), 1 / math.log2(6)]),
    )


@pytest.mark.parametrize("kind", ["log", "geometric", "uniform"])
@pytest.mark.parametrize("K", [1, 4, 10])
def test_weights_sum_to_K_and_do_not_increase(kind, K):
    w = rank_decay_weights(K, kind, viewport_boost=0.3)
    assert w.shape == (K,) and w.dtype == torch.float32
    assert_close(w.sum(), torch.tensor(float(K)))
    assert (w[1:] <= w[:-1] + 1e-6).all()


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="log, geometric, uniform"):
        rank_decay_weights(4, "linear")
    with pytest.raises(ValueError):
        rank_decay_weights(0)
    with pytest.raises(ValueError):
        rank_decay_weights(4, "geometric", gamma=0.0)
