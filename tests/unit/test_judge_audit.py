"""The judge audit's pure parts: selection with ties to the earlier list, and within-request Spearman."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dualrerank.evaluation.judge_audit import by_dependency, candidate_lists, select, within_request_spearman
from dualrerank.models.components import SlateInputs
from dualrerank.models.encoder import SetEncoder
from dualrerank.models.student import NARStudent
from dualrerank.reranking import Reranker
from dualrerank.sampling import masked_sequential_argmax


def test_select_takes_each_rows_best_scored_value_and_breaks_ties_toward_the_earlier_list():
    scores = np.array([[0.0, 2.0, 1.0], [1.0, 1.0, 1.0], [-1.0, -3.0, -1.0]])
    values = np.array([[10.0, 20.0, 30.0], [40.0, 50.0, 60.0], [70.0, 80.0, 90.0]])
    assert select(scores, values).tolist() == [20.0, 40.0, 70.0]


def test_within_request_spearman_averages_rows_and_skips_constant_ones():
    a = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    b = np.array([[1.0, 2.0, 4.0], [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    # row 0 agrees (+1), row 1 is reversed (-1), row 2 is constant (NaN, skipped): mean 0
    assert within_request_spearman(a, b) == pytest.approx(0.0)
    assert within_request_spearman(a[:1], b[:1]) == pytest.approx(1.0)


def test_candidate_lists_start_with_the_greedy_list_and_are_distinct_valid_items():
    torch.manual_seed(0)
    B, N, F, C, K = 5, 9, 3, 2, 4
    net = NARStudent(SetEncoder(F, C, d_model=16, n_heads=2, n_layers=1), d_model=16, n_heads=2, n_layers=1, page_len=K)
    pad = torch.zeros(B, N, dtype=torch.bool)
    pad[1, 6:] = True
    rank = torch.arange(1, N + 1.0).expand(B, N)
    x = SlateInputs(torch.randn(B, N, F), torch.randn(B, C), torch.randn(B, N), rank, pad)
    tensors = dict(zip(SlateInputs._fields, x))
    lists = candidate_lists(Reranker(net, seed=3), tensors, n=6, batch=2)  # batches of 2: 3 batches
    assert lists.shape == (B, 6, K)
    with torch.inference_mode():
        assert torch.equal(lists[:, 0], masked_sequential_argmax(net.eval()(x), pad))
    for b in range(B):
        for g in range(6):
            row = lists[b, g].tolist()
            assert len(set(row)) == K and not pad[b, row].any()
    assert torch.equal(lists, candidate_lists(Reranker(net, seed=3), tensors, n=6, batch=2))  # seeded
    assert not torch.equal(lists, candidate_lists(Reranker(net, seed=4), tensors, n=6, batch=2))


def test_by_dependency_splits_the_truth_into_what_each_dependency_adds_and_the_item_values():
    from test_world import small_world

    from dualrerank.world.simulator import DEPENDENCIES

    world = small_world(redundancy=0.8, context=0.6, intent_coverage=0.5)
    req = world.split("test").subset(slice(0, 12))
    rng = np.random.default_rng(2)
    G = 6
    lists = np.stack(
        [
            np.stack([rng.permutation(world.cfg.n_candidates)[: world.cfg.page_len] for _ in range(G)])
            for _ in req.request_id
        ]
    )
    truth = np.stack([world.utility(req, lists[:, g]) for g in range(G)], axis=1)
    alone = np.stack([world.without(*DEPENDENCIES).utility(req, lists[:, g]) for g in range(G)], axis=1)
    noise = rng.normal(size=truth.shape)
    out = by_dependency(world, req, torch.from_numpy(lists), truth, {"truth": truth, "alone": alone, "noise": noise})
    assert set(out) == {*DEPENDENCIES, "item_values"}
    assert out["item_values"]["alone"] == pytest.approx(1.0)  # the part is the utility with every dependency off
    for part in out.values():
        assert part["truth"] == pytest.approx(part["spearman_with_truth"])
        assert part["within_request_std"] > 0
    # each part is the truth minus the utility in the world without that one dependency
    red = truth - np.stack([world.without("redundancy").utility(req, lists[:, g]) for g in range(G)], axis=1)
    assert out["redundancy"]["spearman_with_truth"] == pytest.approx(within_request_spearman(red, truth))
