"""The evaluator's within-request comparison term and its grouped training batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualrerank.losses.reward_model import within_request_mse


def test_within_request_mse_ignores_what_is_common_to_a_request():
    logged = torch.tensor([[1.0, 2.0, 4.0], [10.0, 10.0, 13.0]])
    shifted = logged + torch.tensor([[5.0], [-7.0]])  # every page of a request off by the same amount
    valid = torch.ones(2, 3, dtype=torch.bool)
    assert within_request_mse(shifted, logged, valid).item() == pytest.approx(0.0, abs=1e-6)
    # ... but not a page-by-page error: centred rows [-1, 0, 1] vs [-4/3, -1/3, 5/3] -> mean sq. 2/9 per page
    predicted = torch.tensor([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])
    expected = (((torch.tensor([-1.0, 0, 1]) - torch.tensor([-4 / 3, -1 / 3, 5 / 3])) ** 2).mean()
                + ((torch.tensor([-1.0, 0, 1]) - torch.tensor([-1.0, -1.0, 2.0])) ** 2).mean()) / 2  # fmt: skip
    assert within_request_mse(predicted, logged, valid).item() == pytest.approx(expected.item(), rel=1e-6)


def test_within_request_mse_centres_on_valid_pages_and_skips_rows_without_a_comparison():
    predicted = torch.tensor([[1.0, 3.0, 100.0], [5.0, -50.0, 0.0]], requires_grad=True)
    logged = torch.tensor([[0.0, 4.0, -100.0], [1.0, 50.0, 0.0]])
    valid = torch.tensor([[True, True, False], [True, False, False]])
    # row 0: pages 0, 1 only -> centred (-1, 1) vs (-2, 2): ((1)^2 + (1)^2) / 2 = 1; row 1 has one page: skipped
    loss = within_request_mse(predicted, logged, valid)
    assert loss.item() == pytest.approx(1.0)
    loss.backward()
    assert predicted.grad[0, 2] == 0 and (predicted.grad[1] == 0).all()  # invalid pages and lone rows get none
    none_valid = torch.zeros(2, 3, dtype=torch.bool)
    assert within_request_mse(predicted, logged, none_valid).item() == 0.0


def test_its_minimiser_is_the_expected_reward_difference_under_noisy_outcomes():
    """Fitting one free utility per page to many noisy draws recovers the centred expectations."""
    gen = torch.Generator().manual_seed(0)
    mean = torch.tensor([0.0, 0.3, -0.2, 0.5])
    draws = mean + torch.randn(4000, 4, generator=gen) * 2.0  # one noisy outcome per page per request
    u = torch.zeros(4, requires_grad=True)
    opt = torch.optim.Adam([u], lr=0.05)
    valid = torch.ones(4000, 4, dtype=torch.bool)
    for _ in range(300):
        opt.zero_grad()
        within_request_mse(u.expand(4000, 4), draws, valid).backward()
        opt.step()
    np.testing.assert_allclose((u - u.mean()).detach(), mean - mean.mean(), atol=0.08)
