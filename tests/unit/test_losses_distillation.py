"""Sequential KD (soft, prefix-masked) and hard KD, pinned against a slow loop reference."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from dualrerank.data.schema import PAD_INDEX
from dualrerank.losses import LOSSES, hard_kd_loss, mle_loss, rank_decay_weights, sequential_kd_loss
from dualrerank.sampling import available_mask


def ref_kd(student, teacher, traj, pad_mask, tau=1.0, weights=None, direction="forward"):
    num, den = torch.zeros((), dtype=student.dtype), 0.0
    for b in range(student.shape[0]):
        for k in range(student.shape[1]):
            if int(traj[b, k]) == PAD_INDEX:
                continue
            avail = [i for i in range(student.shape[2]) if not pad_mask[b, i] and i not in traj[b, :k].tolist()]
            p = torch.softmax(teacher[b, k, avail] / tau, 0)
            q = torch.softmax(student[b, k, avail] / tau, 0)
            kl = (p * (p / q).log()).sum() if direction == "forward" else (q * (q / p).log()).sum()
            w = 1.0 if weights is None else float(weights[k])
            num, den = num + w * kl, den + w
    return tau**2 * num / den


def make_pair(inputs, seed):
    student, pad_mask, traj = inputs(seed=seed)
    teacher = inputs(seed=seed + 100)[0].masked_fill(pad_mask[:, None], -7.0)
    return student, teacher, traj, pad_mask


@pytest.mark.parametrize("tau", [1.0, 2.0])
@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("weighted", [False, True])
def test_kd_is_pinned(inputs, tau, direction, weighted):
    student, teacher, traj, pad_mask = make_pair(inputs, seed=0)
    w = rank_decay_weights(traj.shape[1], "geometric", 0.7) if weighted else None
    got = sequential_kd_loss(student, teacher, traj, pad_mask, tau, w, direction)
    assert_close(got, ref_kd(student, teacher, traj, pad_mask, tau, w, direction))


def test_identical_teacher_and_student_give_zero(inputs):
    student, pad_mask, traj = inputs(seed=1)
    student.requires_grad_(True)
    loss = sequential_kd_loss(student, student.detach().clone(), traj, pad_mask, temperature=2.0)
    loss.backward()
    assert_close(loss, torch.zeros((), dtype=student.dtype))
    assert_close(student.grad, torch.zeros_like(student))


def test_reverse_swaps_the_kl_and_forward_is_mode_covering():
    pad_mask = torch.zeros(1, 3, dtype=torch.bool)
    traj = torch.tensor([[0]])
    teacher = torch.log(torch.tensor([[[0.49, 0.49, 0.02]]]))  # two modes
    student = torch.log(torch.tensor([[[0.98, 0.01, 0.01]]]))  # sits on one of them
    fwd = sequential_kd_loss(student, teacher, traj, pad_mask, direction="forward")
    rev = sequential_kd_loss(student, teacher, traj, pad_mask, direction="reverse")
    assert_close(rev, sequential_kd_loss(teacher, student, traj, pad_mask, direction="forward"))
    hand_fwd = 0.49 * math.log(0.49 / 0.98) + 0.49 * math.log(0.49 / 0.01) + 0.02 * math.log(0.02 / 0.01)  # 1.581
    hand_rev = 0.98 * math.log(0.98 / 0.49) + 0.01 * math.log(0.01 / 0.49) + 0.01 * math.log(0.01 / 0.02)  # 0.633
    assert_close(fwd, torch.tensor(hand_fwd))
    assert_close(rev, torch.tensor(hand_rev))
    assert fwd > 2 * rev  # forward KL (mode-covering) punishes the missed mode; reverse KL tolerates it


def test_temperature_scales_logits_and_multiplies_by_tau_squared(inputs):
    student, teacher, traj, pad_mask = make_pair(inputs, seed=2)
    at_two = sequential_kd_loss(student, teacher, traj, pad_mask, temperature=2.0)
    assert_close(at_two, 4.0 * sequential_kd_loss(student / 2, teacher / 2, traj, pad_mask, temperature=1.0))


def test_position_weights(inputs):
    student, teacher, traj, pad_mask = make_pair(inputs, seed=3)
    K = traj.shape[1]
    plain = sequential_kd_loss(student, teacher, traj, pad_mask)
    assert_close(sequential_kd_loss(student, teacher, traj, pad_mask, position_weights=3.0 * torch.ones(K)), plain)
    only_second = torch.zeros(K)
    only_second[1] = 1.0
    got = sequential_kd_loss(student, teacher, traj, pad_mask, position_weights=only_second)
    assert_close(got, ref_kd(student, teacher, traj, pad_mask, weights=only_second))  # mean KL at k = 1 only
    assert not torch.isclose(got, plain)


def test_teacher_gets_no_gradient_and_prefix_items_none(inputs):
    student, teacher, traj, pad_mask = make_pair(inputs, seed=4)
    student.requires_grad_(True)
    teacher.requires_grad_(True)
    sequential_kd_loss(student, teacher, traj, pad_mask, temperature=1.5).backward()
    assert teacher.grad is None
    unavailable = ~available_mask(pad_mask, traj)
    assert torch.isfinite(student.grad).all() and (student.grad[unavailable] == 0).all()


@pytest.mark.parametrize("direction", ["forward", "reverse"])
def test_padding_invariance(inputs, junk_padding, direction):
    student, teacher, traj, pad_mask = make_pair(inputs, seed=5)
    big_s, big_pad = junk_padding(student, pad_mask)
    big_t, _ = junk_padding(teacher, pad_mask)
    big_s.requires_grad_(True)
    loss = sequential_kd_loss(big_s, big_t, traj, big_pad, 2.0, direction=direction)
    assert_close(loss, sequential_kd_loss(student, teacher, traj, pad_mask, 2.0, direction=direction))
    loss.backward()
    assert torch.isfinite(big_s.grad).all()
    assert_close(hard_kd_loss(big_s, traj, big_pad), hard_kd_loss(student, traj, pad_mask))


def test_hard_kd_is_mle_on_the_teacher_list(inputs):
    student, _, traj, pad_mask = make_pair(inputs, seed=6)
    assert_close(hard_kd_loss(student, traj, pad_mask), mle_loss(student, traj, pad_mask))
    assert LOSSES["hard_kd"] is hard_kd_loss and LOSSES["kd"] is sequential_kd_loss


def test_degenerate_requests_give_zero_not_nan():
    student = torch.randn(2, 3, 4, requires_grad=True)
    teacher = torch.randn(2, 3, 4)
    pad_mask = torch.tensor([[True, False, True, True], [True] * 4])
    traj = torch.tensor([[1, PAD_INDEX, PAD_INDEX], [PAD_INDEX] * 3])
    loss = sequential_kd_loss(student, teacher, traj, pad_mask)
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(student.grad).all()
    with pytest.raises(ValueError, match="forward, reverse"):
        sequential_kd_loss(student, teacher, traj, pad_mask, direction="js")
