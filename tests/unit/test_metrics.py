"""Offline metrics on tiny lists with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from dualrerank import metrics as M

LN2 = math.log(2)


def test_ndcg_hand_values():
    pages = np.array([[0, 1, 2], [1, 0, 3], [3, -1, -1], [0, 1, 2]])
    gains = np.array([[0, 1, 0, 0], [3, 2, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], dtype=float)
    got = M.ndcg_at_k(pages, gains, k=2)
    graded = (2 + 3 / math.log2(3)) / (3 + 2 / math.log2(3))
    assert_allclose(got[:3], [1 / math.log2(3), graded, 1.0])  # one relevant item at rank 2 = 1/log2(3)
    assert np.isnan(got[3])  # nothing relevant: the ideal DCG is 0
    assert_allclose(M.ndcg_at_k(pages[:1], gains[:1], k=1), [0.0])


def test_recall_hand_values():
    pages = np.array([[0, 1, -1], [2, 3, 1]])
    positives = np.array([[True, False, True, False], [False, False, False, False]])
    assert_allclose(M.recall_at_k(pages, positives, 2)[0], 0.5)
    assert_allclose(M.recall_at_k(pages, positives, 3)[0], 0.5)  # the empty slot adds nothing
    assert np.isnan(M.recall_at_k(pages, positives, 2)[1])


def test_ptar_family_hand_values():
    student = np.array([[0, 1, 2], [3, 1, -1]])
    teacher = np.array([[0, 2, 1], [3, 1, -1]])
    assert M.ptar(student, teacher) == pytest.approx(3 / 5)  # empty slots left out
    assert M.ptar(student, teacher, k=1) == 1.0
    assert M.ptar(student, teacher, k=2) == pytest.approx(3 / 4)
    assert M.exact_list_agreement(student, teacher) == 0.5
    assert M.set_overlap(student, teacher) == 1.0
    assert M.set_overlap(student, teacher, k=2) == pytest.approx((1 / 2 + 1) / 2)


def test_collapse_rate_counts_repeats_not_empty_slots():
    pre_dedup = np.array([[1, 1, 2], [0, 1, 2], [3, -1, -1], [2, 0, 2]])
    assert M.collapse_rate(pre_dedup) == 0.5
    assert M.collapse_share(pre_dedup) == pytest.approx((1 / 3 + 0 + 0 + 1 / 3) / 4)  # [3, -1, -1]: 1 filled slot


def test_entropy_hand_values():
    probs = np.array([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0], [0.25] * 4])
    assert_allclose(M.entropy(probs), [LN2, 0.0, math.log(4)])
    assert M.entropy(probs[None]).shape == (1, 3)


def test_position_divergence_hand_values():
    one, two = [1.0, 0.0], [0.0, 1.0]
    probs = np.array([[one, two, one]])
    assert M.position_divergence(probs) == pytest.approx(2 / 3 * LN2)  # pairs: ln2, 0, ln2
    assert M.position_divergence(probs, valid=np.array([[True, True, False]])) == pytest.approx(LN2)
    assert M.position_divergence(np.array([[one, one]])) == 0.0


def test_ecg_hand_values_for_a_dependent_pair():
    # slot 2 is always the item slot 1 left: its marginal is uniform but its conditional is a point mass
    samples = np.array([[[0, 1], [1, 0], [0, 1], [1, 0]]])  # [R=1, M=4, K=2]
    cond = np.tile([LN2, 0.0], (1, 4, 1))
    miller_madow = (2 - 1) / (2 * 4)
    assert_allclose(M.entropy_consistency_gap(samples, cond), [[miller_madow, LN2 + miller_madow]])


def test_ecg_near_zero_for_independent_slots_and_positive_for_dependent_ones():
    rng = np.random.default_rng(0)
    q = rng.dirichlet(np.ones(5), size=3)  # [K, N]: a position-independent product distribution
    m = 20_000
    indep = np.stack([rng.choice(5, size=m, p=q[k]) for k in range(3)], axis=-1)[None]  # [1, M, K]
    cond = np.broadcast_to(M.entropy(q), (1, m, 3))
    assert np.abs(M.entropy_consistency_gap(indep, cond)).max() < 0.02  # sd of the estimate ~ 0.005
    first = rng.integers(0, 3, size=m)
    dependent = np.stack([first, (first + 1) % 3], axis=-1)[None]  # slot 2 fixed by slot 1
    cond_dep = np.broadcast_to([math.log(3), 0.0], (1, m, 2))
    assert_allclose(M.entropy_consistency_gap(dependent, cond_dep), [[0.0, math.log(3)]], atol=0.01)


def test_ecg_is_nan_on_empty_slots():
    samples = np.array([[[2, -1], [0, -1]]])
    got = M.entropy_consistency_gap(samples, np.zeros((1, 2, 2)))
    assert np.isfinite(got[0, 0]) and np.isnan(got[0, 1])


def test_mean_ci95_and_paired_difference():
    mean, half = M.mean_ci95(np.array([1.0, 2.0, 3.0, 4.0, np.nan]))
    assert mean == 2.5 and half == pytest.approx(1.96 * math.sqrt(5 / 3) / 2)
    d = M.paired_difference(np.array([2.0, 5.0, np.nan]), np.array([1.0, 2.0, 0.0]))  # differences 1, 3
    assert d == pytest.approx({"mean": 2.0, "ci_low": 2.0 - 1.96, "ci_high": 2.0 + 1.96})
    assert all(math.isnan(v) for v in M.mean_ci95(np.array([np.nan])))


def test_welch_difference_by_hand():
    # means 2 and 1, variances 1 and 1, n = 3 each: se = sqrt(2/3), df = (2/3)² / (2 · (1/3)² / 2) = 4, t = 2.7764
    d = M.welch_difference([1.0, 2.0, 3.0], [0.0, 1.0, 2.0])
    assert d["mean"] == 1.0 and d["df"] == pytest.approx(4.0)
    assert d["ci_high"] - 1.0 == pytest.approx(2.776445 * math.sqrt(2 / 3), rel=1e-5)
    assert d["ci_low"] == pytest.approx(2.0 - d["ci_high"])
    # unequal spreads: fewer degrees of freedom than the pooled 4
    assert M.welch_difference([1.02, 1.03, 1.04], [1.0, 1.02, 0.98])["df"] == pytest.approx(50 / 17)
    for a, b in (([1.0], [0.0, 1.0]), ([1.0, 1.0], [2.0, 2.0])):  # one run, or no spread: no interval
        d = M.welch_difference(a, b)
        assert math.isfinite(d["mean"]) and math.isnan(d["ci_low"]) and math.isnan(d["ci_high"])


def test_variance_ratio_by_hand():
    # variances 4 and 1 on 2 and 2 degrees of freedom; F(2, 2) has the closed-form quantile p / (1 - p): 39 at 0.975
    r = M.variance_ratio([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])
    assert r == pytest.approx({"ratio": 4.0, "ci_low": 4.0 / 39.0, "ci_high": 4.0 * 39.0})
    assert M.variance_ratio([1.0, 2.0, 3.0], [2.0, 4.0, 6.0])["ratio"] == pytest.approx(0.25)
    wide = M.variance_ratio(np.arange(6.0) * 3, np.arange(6.0))  # 9x the variance, 5 and 5 degrees of freedom
    assert wide["ratio"] == pytest.approx(9.0) and wide["ci_low"] > 1.0  # F(0.975; 5, 5) = 7.146 < 9
    for a, b in (([1.0], [0.0, 1.0]), ([1.0, 2.0], [2.0, 2.0])):  # one run, or no spread in b: no ratio
        assert all(math.isnan(v) for v in M.variance_ratio(a, b).values())


def test_headroom_captured():
    assert M.headroom_captured(1.5, 1.0, 3.0) == 0.25
    assert M.headroom_captured(3.0, 1.0, 3.0) == 1.0
    assert math.isnan(M.headroom_captured(1.0, 2.0, 2.0))


def test_spearman_known_values_with_ties():
    x = np.array([1, 2, 3, 4, 5])
    assert M.spearman(x, np.array([5, 6, 7, 8, 7])) == pytest.approx(8 / math.sqrt(10 * 9.5))  # ranks 1,2,3.5,5,3.5
    assert M.spearman(x, x**3) == pytest.approx(1.0)
    assert M.spearman(x, -x) == pytest.approx(-1.0)
    assert math.isnan(M.spearman(x, np.ones(5)))
