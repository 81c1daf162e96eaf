"""Offline metrics and diagnostics (docs/method.md). NumPy only: arrays in, floats or arrays out.

Shapes: ``R`` requests, ``K`` slots, ``N`` candidates, ``M`` samples per request. Pages hold candidate indices with
``-1`` (PAD_INDEX) at empty slots. Entropies and divergences are in nats.
"""

from __future__ import annotations

import numpy as np

from dualrerank.data.schema import PAD_INDEX

Array = np.ndarray


def _gather(values: Array, pages: Array) -> Array:
    """``values[r, pages[r, j]]`` as float, 0 at empty slots. values: ``[R, N]``, pages: ``[R, K]``."""
    picked = np.take_along_axis(values, np.maximum(pages, 0), axis=1).astype(float)
    return np.where(pages == PAD_INDEX, 0.0, picked)


# --- logged-label metrics ----------------------------------------------------------------------------------------


def ndcg_at_k(pages: Array, gains: Array, k: int) -> Array:
    """NDCG@k per request: ``Σ_{j<k} g(page_j) / log2(j+2)`` over the ideal DCG of the top-k gains of all N
    candidates (padded candidates must have gain 0). ``[R]``, NaN where the ideal DCG is 0."""
    discount = 1.0 / np.log2(np.arange(2, k + 2))  # [k]
    top = pages[:, :k]
    dcg = (_gather(gains, top) * discount[: top.shape[1]]).sum(1)
    ideal_gains = -np.sort(-np.asarray(gains, dtype=float), axis=1)[:, :k]
    ideal = (ideal_gains * discount[: ideal_gains.shape[1]]).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ideal > 0, dcg / np.where(ideal > 0, ideal, 1.0), np.nan)


def recall_at_k(pages: Array, positives: Array, k: int) -> Array:
    """Recall@k per request: share of the positive candidates (``positives: bool[R, N]``) in ``pages[:, :k]``.
    ``[R]``, NaN where a request has no positive."""
    hits = _gather(positives, pages[:, :k]).sum(1)
    n_pos = positives.sum(1)
    return np.where(n_pos > 0, hits / np.maximum(n_pos, 1), np.nan)


# --- teacher-student agreement (PTAR family) ---------------------------------------------------------------------


def ptar(student: Array, teacher: Array, k: int | None = None) -> float:
    """Position-wise top-1 agreement of two decoded lists ``[R, K]`` over the first k slots (all if None),
    averaged over the slots the teacher fills (empty slots are left out)."""
    s, t = student[:, :k], teacher[:, :k]
    filled = t != PAD_INDEX
    return float((s == t)[filled].mean()) if filled.any() else float("nan")


def exact_list_agreement(student: Array, teacher: Array) -> float:
    """Share of requests whose two lists ``[R, K]`` are identical (empty slots included)."""
    return float(np.all(student == teacher, axis=1).mean())


def set_overlap(student: Array, teacher: Array, k: int | None = None) -> float:
    """``|set(s[:k]) ∩ set(t[:k])| / k`` averaged over requests; k = the teacher's filled slots among the first k
    (so a request with fewer valid candidates than k can still reach 1)."""
    s, t = student[:, :k], teacher[:, :k]
    t_filled = t != PAD_INDEX
    inter = ((s[:, :, None] == t[:, None, :]) & t_filled[:, None, :]).any(2).sum(1)  # lists hold distinct items
    n = t_filled.sum(1)
    return float(np.mean(np.where(n > 0, inter / np.maximum(n, 1), np.nan)))


# --- ranking collapse --------------------------------------------------------------------------------------------


def collapse_rate(pre_dedup: Array) -> float:
    """Share of requests whose pre-dedup per-position argmaxes ``[R, K]`` repeat an item (empty slots ignored)."""
    srt = np.sort(pre_dedup, axis=1)
    repeat = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] != PAD_INDEX)
    return float(repeat.any(1).mean())


def collapse_share(pre_dedup: Array) -> float:
    """Mean share of a request's filled positions whose pre-dedup argmax repeats another position's item
    (``(filled - distinct) / filled``): how much of the list collapses, where :func:`collapse_rate` only says
    whether any of it does."""
    srt = np.sort(pre_dedup, axis=1)
    repeat = (srt[:, 1:] == srt[:, :-1]) & (srt[:, 1:] != PAD_INDEX)
    filled = np.maximum((pre_dedup != PAD_INDEX).sum(1), 1)
    return float((repeat.sum(1) / filled).mean())


def entropy(probs: Array) -> Array:
    """Shannon entropy in nats over the last axis, ``0·log 0 = 0``. ``[..., N] -> [...]``."""
    p = np.asarray(probs, dtype=float)
    return -np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0).sum(-1)


def position_divergence(probs: Array, valid: Array | None = None) -> float:
    """Mean pairwise Jensen-Shannon divergence (nats) between the position distributions ``probs[R, K, N]``,
    over pairs k < l of valid positions (``valid: bool[R, K]``, all if None), then over requests."""
    R, K, _ = probs.shape
    valid = np.ones((R, K), dtype=bool) if valid is None else valid
    p, q = probs[:, :, None, :], probs[:, None, :, :]  # [R, K, 1, N], [R, 1, K, N]
    jsd = entropy((p + q) / 2) - (entropy(p) + entropy(q)) / 2  # [R, K, K]
    pair = valid[:, :, None] & valid[:, None, :] & np.triu(np.ones((K, K), dtype=bool), 1)
    n_pairs = pair.sum((1, 2))
    per_request = np.where(n_pairs > 0, (jsd * pair).sum((1, 2)) / np.maximum(n_pairs, 1), np.nan)
    return float(np.nanmean(per_request)) if np.any(n_pairs > 0) else float("nan")


# --- unimodal concentration: Entropy-Consistency Gap -------------------------------------------------------------


def entropy_consistency_gap(samples: Array, cond_entropy: Array) -> Array:
    """``ECG_k = H_MM(marginal of slot k over M samples) - mean_m cond_entropy[:, m, k]`` (docs/method.md, [ours]).

    ``samples: [R, M, K]`` lists sampled from the teacher; ``cond_entropy: [R, M, K]`` the entropy (nats) of the
    teacher's step-k distribution given sample m's prefix. The marginal entropy is the plug-in estimate plus the
    Miller-Madow correction ``(m̂ - 1) / (2M)``, m̂ = distinct items seen. ~0 when slots are independent, > 0 when
    the item at k depends on the prefix (what a NAR model cannot represent). ``[R, K]``; NaN at empty slots.
    """
    R, _, K = samples.shape
    width = int(samples.max()) + 2  # value v -> column v + 1, so -1 gets column 0
    cell = (np.arange(R)[:, None, None] * K + np.arange(K)[None, None, :]) * width + samples + 1  # [R, M, K]
    counts = np.bincount(cell.ravel(), minlength=R * K * width).reshape(R, K, width)[:, :, 1:]  # [R, K, N]
    seen = counts.sum(-1)  # [R, K]: non-empty samples
    n = np.maximum(seen, 1)
    h_marginal = entropy(counts / n[..., None]) + ((counts > 0).sum(-1) - 1) / (2 * n)
    return np.where(seen > 0, h_marginal - cond_entropy.mean(1), np.nan)


# --- statistics --------------------------------------------------------------------------------------------------


def mean_ci95(x: Array) -> tuple[float, float]:
    """NaN-aware mean and normal-approximation 95% half-width ``1.96 · sd / √n`` (NaN half-width when n < 2)."""
    x = np.asarray(x, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    half = 1.96 * x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
    return float(x.mean()), float(half)


def paired_difference(a: Array, b: Array) -> dict[str, float]:
    """Mean of ``a - b`` over pairs where both are finite, with its 95% interval: ``{mean, ci_low, ci_high}``."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    mean, half = mean_ci95(d)
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half}


def welch_difference(a: Array, b: Array) -> dict[str, float]:
    """Mean of ``a`` minus mean of ``b`` for two independent samples (e.g. training runs of two methods, one value
    per seed), with Welch's 95% t interval: ``{mean, ci_low, ci_high, df}``. NaN interval when either sample has
    fewer than 2 values or both have no spread."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    mean = float(a.mean() - b.mean())
    va, vb = (a.var(ddof=1) / a.size, b.var(ddof=1) / b.size) if min(a.size, b.size) >= 2 else (0.0, 0.0)
    se2 = va + vb
    if se2 == 0:
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "df": float("nan")}
    df = se2**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    half = float(stats.t.ppf(0.975, df) * np.sqrt(se2))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "df": float(df)}


def variance_ratio(a: Array, b: Array) -> dict[str, float]:
    """Sample variance of ``a`` over that of ``b`` for two independent samples (e.g. one value per seed of two
    methods), with the F distribution's 95% interval for the ratio of the true variances (assumes normal
    samples): ``{ratio, ci_low, ci_high}``. An interval above 1 says ``a`` varies more. NaN when either sample
    has fewer than 2 values or ``b`` has no spread."""
    from scipy import stats

    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if min(a.size, b.size) < 2 or b.var() == 0:
        return {"ratio": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    ratio = float(a.var(ddof=1) / b.var(ddof=1))
    dfa, dfb = a.size - 1, b.size - 1
    high, low = stats.f.ppf(0.975, dfa, dfb), stats.f.ppf(0.025, dfa, dfb)
    return {"ratio": ratio, "ci_low": ratio / float(high), "ci_high": ratio / float(low)}


def headroom_captured(u: float, u_base: float, u_oracle: float) -> float:
    """``(u - u_base) / (u_oracle - u_base)`` (docs/method.md); NaN when the oracle has no headroom over the base."""
    gap = u_oracle - u_base
    return float((u - u_base) / gap) if gap != 0 else float("nan")


def _average_ranks(x: Array) -> Array:
    """1-based ranks, ties get the average of the ranks they span."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)  # rank of the last element of each tie group
    return (upper - (counts - 1) / 2.0)[inverse]


def spearman(x: Array, y: Array) -> float:
    """Spearman rank correlation (Pearson on average ranks) over pairs where both are finite; NaN if constant."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 2:
        return float("nan")
    rx, ry = _average_ranks(x[keep]), _average_ranks(y[keep])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = np.sqrt((rx**2).sum() * (ry**2).sum())
    return float((rx * ry).sum() / denom) if denom > 0 else float("nan")
