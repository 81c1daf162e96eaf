"""Masked sequential policy, decoders and the vectorized Gumbel-Max sampler, pinned against slow references."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.testing import assert_close

from dualrerank.data.schema import PAD_INDEX
from dualrerank.sampling import (
    available_mask,
    gumbel_max_pages,
    gumbel_max_sample,
    masked_sequential_argmax,
    position_valid,
    pre_dedup_argmax,
    prefix_masked_log_softmax,
    request_seed,
    sequence_log_prob,
)

# --- slow references: explicit loops over b and k --------------------------------------------------------------


def ref_available(pad: list[bool], chosen: list[int]) -> list[int]:
    return [i for i in range(len(pad)) if not pad[i] and i not in chosen]


def ref_log_prob(logits_b: torch.Tensor, pad: list[bool], page: list[int], tau: float = 1.0) -> list[float]:
    """Per-position ``log π`` of one list; 0 at PAD positions."""
    out = []
    for k, item in enumerate(page):
        if item == PAD_INDEX:
            out.append(0.0)
            continue
        avail = ref_available(pad, page[:k])
        lse = math.log(sum(math.exp(logits_b[k, i].item() / tau) for i in avail))
        out.append(logits_b[k, item].item() / tau - lse)
    return out


def ref_greedy(logits_b: torch.Tensor, pad: list[bool]) -> list[int]:
    page: list[int] = []
    for k in range(logits_b.shape[0]):
        avail = ref_available(pad, page)
        page.append(max(avail, key=lambda i: logits_b[k, i].item()) if avail else PAD_INDEX)
    return page


# --- masks and the per-position distribution -------------------------------------------------------------------


def test_position_valid(inputs):
    _, pad_mask, _ = inputs(K=4)
    expected = torch.tensor([[True] * 4, [True] * 4, [True, True, True, False], [True, False, False, False]])
    assert torch.equal(position_valid(pad_mask, 4), expected)


def test_available_mask_matches_reference(inputs):
    _, pad_mask, target = inputs()
    got = available_mask(pad_mask, target)  # [B, K, N]
    grouped = available_mask(pad_mask, target[:, None, :].expand(-1, 3, -1))  # [B, G, K, N]
    B, K, N = got.shape
    for b, k in itertools.product(range(B), range(K)):
        avail = ref_available(pad_mask[b].tolist(), target[b, :k].tolist())
        assert got[b, k].nonzero().flatten().tolist() == avail
        assert torch.equal(grouped[b, :, k], got[b, k].expand(3, N))


@pytest.mark.parametrize("tau", [1.0, 0.5])
def test_prefix_masked_log_softmax_matches_reference(inputs, tau):
    logits, pad_mask, target = inputs(seed=1)
    got = prefix_masked_log_softmax(logits, pad_mask, target, tau)
    B, K, N = logits.shape
    assert not got.isnan().any()
    for b, k in itertools.product(range(B), range(K)):
        avail = ref_available(pad_mask[b].tolist(), target[b, :k].tolist())
        lse = math.log(sum(math.exp(logits[b, k, i].item() / tau) for i in avail)) if avail else 0.0
        want = torch.full((N,), float("-inf"), dtype=logits.dtype)
        for i in avail:
            want[i] = logits[b, k, i] / tau - lse
        assert_close(got[b, k], want)  # an empty position (no avail) is all -inf


def test_masked_sequential_argmax_matches_reference(inputs):
    for seed in range(3):
        logits, pad_mask, _ = inputs(seed=seed)
        got = masked_sequential_argmax(logits, pad_mask)
        for b in range(logits.shape[0]):
            assert got[b].tolist() == ref_greedy(logits[b], pad_mask[b].tolist())


def test_pre_dedup_argmax_ignores_other_positions(inputs):
    logits, pad_mask, _ = inputs(seed=2)
    logits[0] = logits[0, :1].expand_as(logits[0])  # every position prefers the same item: a collapse
    got = pre_dedup_argmax(logits, pad_mask)
    assert len(set(got[0].tolist())) == 1
    valid = position_valid(pad_mask, logits.shape[1])
    want = logits.masked_fill(pad_mask[:, None], float("-inf")).argmax(-1)
    assert torch.equal(got[valid], want[valid]) and (got[~valid] == PAD_INDEX).all()


# --- sampler ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tau", [1.0, 0.7])
def test_sequence_log_prob_and_sampler_logp_match_reference(inputs, tau):
    logits, pad_mask, _ = inputs(seed=3)
    pages, logp = gumbel_max_sample(logits, pad_mask, 6, tau, generator=torch.Generator().manual_seed(0))
    recomputed = sequence_log_prob(logits, pad_mask, pages, tau)
    assert_close(logp, recomputed)
    for b, g in itertools.product(range(pages.shape[0]), range(pages.shape[1])):
        want = ref_log_prob(logits[b], pad_mask[b].tolist(), pages[b, g].tolist(), tau)
        assert_close(recomputed[b, g], torch.tensor(want, dtype=logits.dtype))


@pytest.mark.parametrize("tau", [1.0, 0.3, 2.0])
def test_greedy_sample_is_masked_sequential_argmax(inputs, tau):
    logits, pad_mask, _ = inputs(seed=4, dtype=torch.float32)
    pages, _ = gumbel_max_sample(logits, pad_mask, 4, tau, generator=torch.Generator().manual_seed(1))
    assert torch.equal(pages[:, 0], masked_sequential_argmax(logits, pad_mask))


def test_sampled_lists_are_valid_k_permutations(inputs):
    logits, pad_mask, _ = inputs(seed=5, K=5, N=8)
    pages, logp = gumbel_max_sample(logits, pad_mask, 64, generator=torch.Generator().manual_seed(2))
    valid = position_valid(pad_mask, 5)  # [B, K]
    assert torch.equal(pages != PAD_INDEX, valid[:, None].expand_as(pages))
    for b, g in itertools.product(range(pages.shape[0]), range(64)):
        items = [i for i in pages[b, g].tolist() if i != PAD_INDEX]
        assert len(set(items)) == len(items) and not pad_mask[b, items].any()
    assert torch.isfinite(logp).all() and (logp[~valid[:, None].expand_as(logp)] == 0).all()


def test_include_greedy_false_changes_sample_zero(inputs):
    logits, pad_mask, _ = inputs(seed=6)
    greedy = masked_sequential_argmax(logits, pad_mask)
    gen = torch.Generator().manual_seed(3)
    pages, _ = gumbel_max_sample(logits.repeat(8, 1, 1), pad_mask.repeat(8, 1), 1, include_greedy=False, generator=gen)
    assert not torch.equal(pages[:, 0], greedy.repeat(8, 1))


def test_sampler_is_reproducible_with_a_seeded_generator(inputs):
    logits, pad_mask, _ = inputs(seed=7)

    def draw(seed: int) -> torch.Tensor:
        return gumbel_max_sample(logits, pad_mask, 16, generator=torch.Generator().manual_seed(seed))[0]

    assert torch.equal(draw(11), draw(11))
    assert not torch.equal(draw(11), draw(12))


@pytest.mark.parametrize("tau", [1.0, 0.6])
def test_empirical_list_frequencies_match_exact_policy(tau):
    """200k lists in one call vs the exact π of every K-permutation (4 valid candidates, K = 3: 24 lists;
    and a request with 2 valid candidates, so its last slot is empty: 2 lists).

    Bound: E[TV] <= ½ Σ_s sqrt(p_s / n) <= ½ sqrt(S / n) = ½ sqrt(24 / 2e5) ≈ 0.0055 (Cauchy-Schwarz), and one
    sample moves TV by at most 1/n, so McDiarmid gives P(TV >= E[TV] + 0.005) <= exp(-2 n 0.005²) = e^-10.
    A sampler off by a temperature or a missing renormalisation is off by far more than 0.011 here.
    """
    n = 200_000
    logits = torch.tensor([[[2.0, 0.5, 9.0, -1.0, 1.0], [0.0, 1.5, 9.0, 1.0, -0.5], [1.0, -1.0, 9.0, 0.5, 0.0]]])
    logits = logits.repeat(2, 1, 1)
    pad_mask = torch.tensor([[False, False, True, False, False], [True, False, True, False, True]])
    gen = torch.Generator().manual_seed(0)
    pages, _ = gumbel_max_sample(logits, pad_mask, n, tau, include_greedy=False, generator=gen)
    for b in range(2):
        valid = [i for i in range(5) if not pad_mask[b, i]]
        lists = [list(p) for p in itertools.permutations(valid, min(3, len(valid)))]
        lists = [p + [PAD_INDEX] * (3 - len(p)) for p in lists]
        exact = [math.exp(sum(ref_log_prob(logits[b].double(), pad_mask[b].tolist(), p, tau))) for p in lists]
        assert math.isclose(sum(exact), 1.0, rel_tol=1e-9)
        codes = ((pages[b] + 1) * torch.tensor([36, 6, 1])).sum(-1)  # one integer per list
        counts = torch.bincount(codes, minlength=216).double() / n
        want = torch.zeros(216, dtype=torch.float64)
        for p, pr in zip(lists, exact):
            want[(p[0] + 1) * 36 + (p[1] + 1) * 6 + p[2] + 1] = pr
        tv = 0.5 * (counts - want).abs().sum().item()
        assert tv < 0.011, (b, tv)


# --- padding invariance and degenerate requests ----------------------------------------------------------------


def test_padding_invariance(inputs, junk_padding):
    logits, pad_mask, target = inputs(seed=8)
    big_logits, big_pad = junk_padding(logits, pad_mask)
    N = logits.shape[-1]
    assert torch.equal(masked_sequential_argmax(big_logits, big_pad), masked_sequential_argmax(logits, pad_mask))
    assert torch.equal(pre_dedup_argmax(big_logits, big_pad), pre_dedup_argmax(logits, pad_mask))
    lsm = prefix_masked_log_softmax(big_logits, big_pad, target)
    assert_close(lsm[..., :N], prefix_masked_log_softmax(logits, pad_mask, target))
    assert (lsm[..., N:] == float("-inf")).all()
    pages = gumbel_max_sample(logits, pad_mask, 8, generator=torch.Generator().manual_seed(4))[0]
    assert_close(sequence_log_prob(big_logits, big_pad, pages), sequence_log_prob(logits, pad_mask, pages))
    big_pages, big_logp = gumbel_max_sample(big_logits, big_pad, 8, generator=torch.Generator().manual_seed(4))
    assert (big_pages < N).all() and torch.isfinite(big_logp).all()


def test_pages_only_sampler_draws_the_same_lists(inputs):
    """Serving's sampler (no log-probabilities) and the training sampler draw the same lists from one seed."""
    logits, pad_mask, _ = inputs(seed=5)
    for tau, greedy in ((1.0, True), (0.5, False)):
        pages = gumbel_max_pages(logits, pad_mask, 8, tau, greedy, generator=torch.Generator().manual_seed(3))
        same, logp = gumbel_max_sample(logits, pad_mask, 8, tau, greedy, generator=torch.Generator().manual_seed(3))
        assert torch.equal(pages, same)
        assert_close(logp, sequence_log_prob(logits, pad_mask, pages, tau))
        if greedy:
            assert torch.equal(pages[:, 0], masked_sequential_argmax(logits, pad_mask))


def test_all_but_one_padded_and_short_requests_never_nan():
    logits = torch.randn(2, 3, 5, generator=torch.Generator().manual_seed(0), requires_grad=True)
    pad_mask = torch.tensor([[True, True, False, True, True], [True] * 5])  # one valid; none valid
    pages, logp = gumbel_max_sample(logits, pad_mask, 4)
    assert pages[0, :, 0].eq(2).all() and pages[0, :, 1:].eq(PAD_INDEX).all() and pages[1].eq(PAD_INDEX).all()
    assert torch.equal(logp, torch.zeros_like(logp))
    lp = sequence_log_prob(logits, pad_mask, pages)
    lp.sum().backward()
    assert torch.equal(lp, torch.zeros_like(lp)) and torch.isfinite(logits.grad).all()


def test_sequence_log_prob_gradient_is_zero_on_unavailable_items(inputs):
    logits, pad_mask, target = inputs(seed=9)
    logits.requires_grad_(True)
    sequence_log_prob(logits, pad_mask, target[:, None]).sum().backward()
    unavailable = ~available_mask(pad_mask, target)  # padded, or chosen earlier in the list
    assert torch.isfinite(logits.grad).all() and (logits.grad[unavailable] == 0).all()


def test_bad_arguments_raise(inputs):
    logits, pad_mask, target = inputs()
    with pytest.raises(ValueError, match="temperature"):
        gumbel_max_sample(logits, pad_mask, 2, temperature=0.0)
    with pytest.raises(ValueError, match="temperature"):
        prefix_masked_log_softmax(logits, pad_mask, target, temperature=-1.0)
    with pytest.raises(ValueError, match="n_samples"):
        gumbel_max_sample(logits, pad_mask, 0)


# --- draws keyed by request ------------------------------------------------------------------------------------


def test_keyed_draws_depend_on_the_request_seed_alone(inputs, junk_padding):
    """A request's lists come from its own seed: the same alone, in any batch, padded further, or with fewer lists
    drawn; another seed draws other lists; the greedy list stays first."""
    logits, pad_mask, _ = inputs(seed=9)
    seeds = [request_seed(0, f"r{b}") for b in range(len(logits))]
    pages = gumbel_max_pages(logits, pad_mask, 8, seeds=seeds)
    for b in range(len(logits)):
        alone = gumbel_max_pages(logits[b : b + 1], pad_mask[b : b + 1], 8, seeds=seeds[b : b + 1])
        assert torch.equal(alone[0], pages[b])
    flipped = gumbel_max_pages(logits.flip(0), pad_mask.flip(0), 8, seeds=seeds[::-1])
    assert torch.equal(flipped.flip(0), pages)
    big_logits, big_pad = junk_padding(logits, pad_mask)
    assert torch.equal(gumbel_max_pages(big_logits, big_pad, 8, seeds=seeds), pages)
    assert torch.equal(gumbel_max_pages(logits, pad_mask, 3, seeds=seeds), pages[:, :3])
    assert torch.equal(pages[:, 0], masked_sequential_argmax(logits, pad_mask))
    other = gumbel_max_pages(logits, pad_mask, 8, seeds=[s + 1 for s in seeds])
    assert not torch.equal(other[:2], pages[:2])  # the two requests with more than K candidates: other lists
    assert (pages[:, :, 0] >= 0).all()
    with pytest.raises(ValueError, match="one seed per request"):
        gumbel_max_pages(logits, pad_mask, 8, seeds=seeds[:2])


def test_request_seed_is_a_stable_hash_of_the_seed_and_the_key():
    assert request_seed(0, "r1") == request_seed(0, "r1")
    assert len({request_seed(0, "r1"), request_seed(1, "r1"), request_seed(0, "r2"), request_seed(0, "r10")}) == 4
    assert 0 <= request_seed(7, "x" * 200) < 2**63
    assert request_seed(0, "r1") == 2837381064146974786  # pinned: a served page must not change across releases
