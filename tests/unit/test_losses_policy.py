"""LDRO / GRPO objectives: advantages pinned by hand-worked examples, the streaming scale, the surrogate's
gradient against the hand-derived policy gradient, clipping, and the KL terms."""

from __future__ import annotations

import math

import pytest
import torch
from torch.testing import assert_close

from dualrerank.data.schema import PAD_INDEX
from dualrerank.losses import rank_decay_weights
from dualrerank.losses.policy import (
    clipped_surrogate,
    decoupled_advantages,
    ema_update,
    exact_kl,
    group_centre,
    grpo_advantages,
    k3_kl,
    per_list_sum,
    residual_scale,
)
from dualrerank.sampling import sequence_log_prob

# --- advantages ---------------------------------------------------------------------------------------------


def test_constant_group_gives_zero_advantage_and_no_nan():
    rewards = torch.full((2, 4, 3), 1.5)  # every list of both requests has the same reward vector
    rewards[1] = torch.tensor([0.2, -1.0, 7.0])
    w, scale = torch.tensor([1.0, 2.0, -0.5]), torch.tensor([0.3, 1e-9, 2.0])
    for adv in (
        decoupled_advantages(rewards, w, scale, batch_renorm=True),
        decoupled_advantages(rewards, w, scale, ref_scale=scale, batch_renorm=False),
        grpo_advantages(rewards, w),
    ):
        assert torch.isfinite(adv).all()
        assert_close(adv, torch.zeros(2, 4))


def test_decoupled_advantages_by_hand():
    # one request, two lists, two components on very different scales
    rewards = torch.tensor([[[1.0, 10.0], [3.0, 30.0]]])
    assert_close(group_centre(rewards), torch.tensor([[[-1.0, -10.0], [1.0, 10.0]]]))
    assert_close(residual_scale(group_centre(rewards)), torch.tensor([1.0, 10.0]))
    scale = torch.tensor([1.0, 10.0])
    # normalised units: each component contributes ±1, weighted
    got = decoupled_advantages(rewards, torch.tensor([1.0, 0.5]), scale, batch_renorm=False, eps=0.0)
    assert_close(got, torch.tensor([[-1.5, 1.5]]))
    # reward units: weights x scale at calibration; undrifted this is the centred weighted sum
    got = decoupled_advantages(rewards, torch.tensor([1.0, 0.5]), scale, ref_scale=scale, batch_renorm=False, eps=0.0)
    assert_close(got, torch.tensor([[-6.0, 6.0]]))  # = (1·(-1) + 0.5·(-10), ...)
    # batch renormalisation: zero mean, unit (population) std over the batch
    got = decoupled_advantages(rewards, torch.tensor([1.0, 0.5]), scale, batch_renorm=True, eps=0.0)
    assert_close(got, torch.tensor([[-1.0, 1.0]]))


def test_grpo_advantages_by_hand():
    rewards = torch.tensor([[[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]]])  # R = r0 + r1 = 1, 3, 5
    got = grpo_advantages(rewards, torch.tensor([1.0, 1.0]), eps=0.0)
    assert_close(got, torch.tensor([[-1.0, 0.0, 1.0]]) * math.sqrt(3 / 2))  # population std of (1,3,5) = sqrt(8/3)


def test_drifting_component_swings_grpo_but_not_the_streaming_scale():
    """The GDPO argument: scale one component x5. GRPO's summed scalar follows the drifted component; LDRO's
    per-component scale (once the EMA has absorbed the drift) gives the same advantages as before."""
    g = torch.Generator().manual_seed(0)
    rewards = torch.randn(8, 6, 2, generator=g)
    w = torch.tensor([1.0, 1.0])
    drifted = rewards * torch.tensor([5.0, 1.0])
    s0, s1 = residual_scale(group_centre(rewards)), residual_scale(group_centre(drifted))
    assert_close(decoupled_advantages(drifted, w, s1, ref_scale=s0), decoupled_advantages(rewards, w, s0, ref_scale=s0))
    before, after = grpo_advantages(rewards, w), grpo_advantages(drifted, w)
    corr_c1 = lambda a: torch.corrcoef(torch.stack([a.flatten(), group_centre(rewards)[..., 1].flatten()]))[0, 1]  # noqa: E731
    assert corr_c1(after) < corr_c1(before) - 0.2  # component 1 barely counts any more under GRPO


def test_ema_scale_follows_the_known_sequence():
    """Worked by hand with an asymmetric rate (at eta = 0.5, swapping eta and 1 - eta would go unnoticed):
    s <- 0.75 s + 0.25 observed once a component has started; it starts at its first non-zero observation."""
    eta = 0.25
    scale, ready = torch.ones(2), torch.zeros(2, dtype=torch.bool)
    observed = [torch.tensor([2.0, 0.0]), torch.tensor([4.0, 0.0]), torch.tensor([0.0, 6.0]), torch.tensor([1.0, 2.0])]
    # step 2: 0.75*2 + 0.25*4 = 2.5; step 3: 0.75*2.5 + 0 = 1.875, component 1 starts at 6;
    # step 4: 0.75*1.875 + 0.25*1 = 1.65625 and 0.75*6 + 0.25*2 = 5
    expected = [[2.0, 1.0], [2.5, 1.0], [1.875, 6.0], [1.65625, 5.0]]
    ready_expected = [[True, False], [True, False], [True, True], [True, True]]
    for obs, exp, rdy in zip(observed, expected, ready_expected):
        scale, ready = ema_update(scale, ready, obs, eta)
        assert_close(scale, torch.tensor(exp))
        assert ready.tolist() == rdy


# --- the surrogate's gradient is the policy gradient ---------------------------------------------------------


def hand_policy_gradient(logits, pages, adv, slot_w):
    """``-(1/G) Σ_g A_g Σ_k w_k ∇ log π_k(σ_gk)`` with ``∂ log softmax_avail(ℓ_k)[i] / ∂ℓ_k[j] = 1[i=j] - p_k(j)``."""
    _, K, N = logits.shape
    grad = torch.zeros_like(logits)
    G = pages.shape[1]
    for g in range(G):
        taken: list[int] = []
        for k in range(K):
            item = int(pages[0, g, k])
            avail = [j for j in range(N) if j not in taken]
            p = torch.softmax(logits[0, k, avail], 0)
            for a, j in enumerate(avail):
                grad[0, k, j] -= adv[0, g] * slot_w[k] * ((1.0 if j == item else 0.0) - p[a]) / G
            taken.append(item)
    return grad


@pytest.mark.parametrize("weighted", [False, True])
def test_surrogate_gradient_on_a_two_position_toy_is_the_hand_derived_policy_gradient(weighted):
    logits = torch.tensor([[[0.3, -1.0, 2.0], [1.0, 0.5, -0.2]]], requires_grad=True)  # B=1, K=2, N=3
    pages = torch.tensor([[[2, 0], [0, 1], [1, 2]]])  # G=3 lists of 2 distinct items
    adv = torch.tensor([[1.0, -0.5, 0.25]])
    pad = torch.zeros(1, 3, dtype=torch.bool)
    slot_w = rank_decay_weights(2, "log") if weighted else torch.ones(2)
    logp = sequence_log_prob(logits, pad, pages)
    loss = clipped_surrogate(logp, logp.detach(), adv, pages != PAD_INDEX, slot_w if weighted else None)
    (grad,) = torch.autograd.grad(loss, logits, retain_graph=True)
    assert_close(grad, hand_policy_gradient(logits.detach(), pages, adv, slot_w))
    if not weighted:  # one ratio per list: the same gradient at ratio 1
        loss_seq = clipped_surrogate(logp, logp.detach(), adv, pages != PAD_INDEX, None, level="sequence")
        assert_close(torch.autograd.grad(loss_seq, logits)[0], grad)


def test_clipping_stops_the_gradient_outside_the_trust_region_only():
    logp = torch.log(torch.tensor([[[0.5, 0.5]]])).requires_grad_(True)  # B=1, G=1, K=2
    old = torch.log(torch.tensor([[[0.25, 0.5]]]))  # ratio 2 at position 0, 1 at position 1
    valid = torch.ones(1, 1, 2, dtype=torch.bool)
    loss = clipped_surrogate(logp, old, torch.tensor([[1.0]]), valid, clip_eps=0.2)
    (grad,) = torch.autograd.grad(loss, logp)
    assert_close(grad, torch.tensor([[[0.0, -1.0]]]))  # clipped above 1.2 with A > 0; unclipped d(-ρA)/dlogp = -1
    loss = clipped_surrogate(logp, old, torch.tensor([[-1.0]]), valid, clip_eps=0.2)  # A < 0: no clip upwards
    assert_close(torch.autograd.grad(loss, logp)[0], torch.tensor([[[2.0, 1.0]]]))


def test_empty_positions_carry_no_loss():
    logp = torch.tensor([[[-0.5, 0.0]]], requires_grad=True)
    pages_valid = torch.tensor([[[True, False]]])
    loss = clipped_surrogate(logp, logp.detach() - 1.0, torch.tensor([[1.0]]), pages_valid, clip_eps=10.0)
    assert_close(torch.autograd.grad(loss, logp)[0][0, 0, 1], torch.tensor(0.0))


# --- KL terms ------------------------------------------------------------------------------------------------


def test_exact_kl_matches_a_loop_reference_and_is_zero_for_the_reference_itself():
    g = torch.Generator().manual_seed(3)
    logits, ref = torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)
    pad = torch.tensor([[False] * 5, [False, False, False, True, True]])
    pages = torch.tensor([[[4, 0, 2], [1, 2, 3]], [[2, 0, 1], [0, 1, PAD_INDEX]]])
    got = exact_kl(logits, ref, pad, pages)
    for b in range(2):
        for g_ in range(2):
            for k in range(3):
                avail = [i for i in range(5) if not pad[b, i] and i not in pages[b, g_, :k].tolist()]
                if int(pages[b, g_, k]) == PAD_INDEX:
                    assert got[b, g_, k] == 0
                    continue
                p, q = torch.softmax(logits[b, k, avail], 0), torch.softmax(ref[b, k, avail], 0)
                assert_close(got[b, g_, k], (p * (p / q).log()).sum())
    assert_close(exact_kl(logits, logits, pad, pages), torch.zeros(2, 2, 3))
    per_list = ref[:, None].expand(2, 2, 3, 5)  # per-list reference logits (the teacher form)
    assert_close(exact_kl(logits, per_list, pad, pages), got)


def test_k3_by_hand():
    logp, ref = torch.log(torch.tensor([[[0.5, 0.2]]])), torch.log(torch.tensor([[[0.25, 0.2]]]))
    valid = torch.tensor([[[True, True]]])
    assert_close(k3_kl(logp, ref, valid), torch.tensor([[[0.5 - math.log(0.5) - 1, 0.0]]]))
    assert_close(per_list_sum(k3_kl(logp, ref, valid), valid), torch.tensor(0.5 - math.log(0.5) - 1))


def test_rank_weights_of_the_surrogate_sum_to_K():
    for K in (2, 6, 10):
        assert_close(rank_decay_weights(K, "log", viewport=4, viewport_boost=0.5).sum(), torch.tensor(float(K)))


def test_bad_ratio_level_raises():
    x = torch.zeros(1, 1, 2)
    with pytest.raises(ValueError, match="position, sequence"):
        clipped_surrogate(x, x, torch.zeros(1, 1), x.bool(), level="token")
