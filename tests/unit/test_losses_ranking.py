"""List MLE and BPR, pinned against slow loop references; padding invariance; prefix items get no mass."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from dualrerank.data.schema import PAD_INDEX
from dualrerank.losses import LOSSES, bpr_loss, mle_loss
from dualrerank.sampling import available_mask


def ref_available(pad: list[bool], chosen: list[int]) -> list[int]:
    return [i for i in range(len(pad)) if not pad[i] and i not in chosen]


def ref_mle(logits, target, pad_mask, weights=None):
    num, den = torch.zeros((), dtype=logits.dtype), 0.0
    for b in range(logits.shape[0]):
        for k in range(logits.shape[1]):
            y = int(target[b, k])
            if y == PAD_INDEX:
                continue
            avail = ref_available(pad_mask[b].tolist(), target[b, :k].tolist())
            nll = torch.logsumexp(logits[b, k, avail], 0) - logits[b, k, y]
            w = 1.0 if weights is None else float(weights[b])
            num, den = num + w * nll, den + w
    return num / den


def ref_bpr(logits, target, pad_mask, negatives):
    total, count = torch.zeros((), dtype=logits.dtype), 0
    for b in range(logits.shape[0]):
        for k in range(logits.shape[1]):
            y = int(target[b, k])
            if y == PAD_INDEX:
                continue
            if negatives == "available":
                negs = [j for j in ref_available(pad_mask[b].tolist(), target[b, :k].tolist()) if j != y]
            else:
                negs = [j for j in target[b, k + 1 :].tolist() if j != PAD_INDEX]
            if not negs:
                continue
            s = logits[b, k]
            total = total + sum(-F.logsigmoid(s[y] - s[j]) for j in negs) / len(negs)
            count += 1
    return total / count


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("weighted", [False, True])
def test_mle_is_pinned(inputs, seed, weighted):
    logits, pad_mask, target = inputs(seed=seed)
    weights = torch.rand(logits.shape[0], generator=torch.Generator().manual_seed(seed)) if weighted else None
    assert_close(mle_loss(logits, target, pad_mask, weights), ref_mle(logits, target, pad_mask, weights))


def test_mle_hand_value_and_constant_weights():
    logits = torch.zeros(1, 2, 3)  # uniform over 3 items, then over the 2 left
    target = torch.tensor([[0, 1]])
    pad_mask = torch.zeros(1, 3, dtype=torch.bool)
    assert_close(mle_loss(logits, target, pad_mask), torch.tensor((math.log(3) + math.log(2)) / 2))
    assert_close(mle_loss(logits, target, pad_mask, torch.tensor([7.0])), mle_loss(logits, target, pad_mask))


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("negatives", ["available", "below"])
def test_bpr_is_pinned(inputs, seed, negatives):
    logits, pad_mask, target = inputs(seed=seed)
    assert_close(bpr_loss(logits, target, pad_mask, negatives), ref_bpr(logits, target, pad_mask, negatives))


def test_bpr_hand_value():
    logits = torch.tensor([[[2.0, 0.0, 1.0]]])  # one position, target item 0, negatives 1 and 2
    loss = bpr_loss(logits, torch.tensor([[0]]), torch.zeros(1, 3, dtype=torch.bool))
    want = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0))) / 2
    assert_close(loss, torch.tensor(want))


@pytest.mark.parametrize(
    "name,kwargs", [("mle", {}), ("bpr", {"negatives": "available"}), ("bpr", {"negatives": "below"})]
)
def test_padding_invariance(inputs, junk_padding, name, kwargs):
    logits, pad_mask, target = inputs(seed=3)
    big_logits, big_pad = junk_padding(logits, pad_mask)
    big_logits.requires_grad_(True)
    loss = LOSSES[name](big_logits, target, big_pad, **kwargs)
    assert_close(loss, LOSSES[name](logits, target, pad_mask, **kwargs))
    loss.backward()
    assert torch.isfinite(big_logits.grad).all() and (big_logits.grad[..., logits.shape[-1] :] == 0).all()


def test_mle_puts_no_mass_on_prefix_or_padded_items(inputs):
    logits, pad_mask, target = inputs(seed=4)
    logits.requires_grad_(True)
    mle_loss(logits, target, pad_mask).backward()
    unavailable = ~available_mask(pad_mask, target)  # [B, K, N]: chosen in target[:, :k], or padded
    assert torch.isfinite(logits.grad).all() and (logits.grad[unavailable] == 0).all()
    assert (logits.grad[target == PAD_INDEX] == 0).all()  # empty positions contribute nothing


def test_bpr_below_only_touches_later_target_items(inputs):
    logits, pad_mask, target = inputs(seed=5)
    logits.requires_grad_(True)
    bpr_loss(logits, target, pad_mask, "below").backward()
    B, K, N = logits.shape
    for b in range(B):
        for k in range(K):
            touched = set(target[b, k:].tolist()) - {PAD_INDEX} if k < K - 1 else set()
            untouched = [i for i in range(N) if i not in touched]
            assert (logits.grad[b, k, untouched] == 0).all()


@pytest.mark.parametrize("name", ["mle", "bpr"])
def test_degenerate_batches_give_finite_losses(name):
    logits = torch.randn(2, 3, 4, requires_grad=True)
    pad_mask = torch.tensor([[True, False, True, True], [True, True, True, True]])  # one valid item; none
    target = torch.tensor([[1, PAD_INDEX, PAD_INDEX], [PAD_INDEX] * 3])
    loss = LOSSES[name](logits, target, pad_mask)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    if name == "mle":
        assert loss.item() == 0.0  # a single available item has probability 1


def test_registry_lists_valid_names_on_unknown_name():
    assert set(LOSSES) == {"mle", "bpr", "kd", "hard_kd"}
    with pytest.raises(KeyError, match="bpr, hard_kd, kd, mle"):
        LOSSES["listnet"]
    with pytest.raises(ValueError, match="available, below"):
        bpr_loss(torch.zeros(1, 1, 2), torch.tensor([[0]]), torch.zeros(1, 2, dtype=torch.bool), "all")
