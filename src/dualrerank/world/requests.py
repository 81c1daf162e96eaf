"""The time-ordered request stream: who asks what, which candidates come back, and what they are worth.

Notation: ``R`` requests, ``N`` candidates per request (in upstream-rank order), ``I`` intents,
``F`` item features, ``Fc`` context features.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from dualrerank.config.world import WorldConfig
from dualrerank.world.entities import Universe

STREAM_SECONDS = 14 * 86400  # the stream spans two weeks

# Latent response model (docs/world.md): click logit and completion-rate coefficients.
CLICK_BIAS, CLICK_REL, CLICK_AFF, CLICK_QUALITY = -2.0, 1.6, 0.8, 0.5
COMPL_BIAS, COMPL_QUALITY, COMPL_AFF, COMPL_DURATION = 0.2, 0.6, 0.5, 0.7


@dataclass(frozen=True)
class RequestSet:
    """Requests with their candidates; every array's first axis is the request."""

    request_id: np.ndarray  # [R] int64, increasing with time
    ts: np.ndarray  # [R] int64 seconds since the stream started
    user: np.ndarray  # [R]
    query: np.ndarray  # [R]
    item_id: np.ndarray  # [R, N] catalogue ids, upstream-rank order
    # latent quantities used by the true utility
    base_logit: np.ndarray  # [R, N] click logit of the item alone
    mean_watch: np.ndarray  # [R, N] expected watch seconds given a click (before drift)
    completion: np.ndarray  # [R, N] probability a clicked item is watched to the end
    on_intent: np.ndarray  # [R, N] 1.0 if the item's topic is one of the query's intents
    topic: np.ndarray  # [R, N]
    author: np.ndarray  # [R, N]
    category: np.ndarray  # [R, N]
    intent_topic: np.ndarray  # [R, I] (-1 = unused)
    intent_weight: np.ndarray  # [R, I]
    watch_scale: np.ndarray  # [R] drift multiplier of watch time
    # observed
    upstream_score: np.ndarray  # [R, N]
    item_features: np.ndarray  # [R, N, F]
    context_features: np.ndarray  # [R, Fc]

    def __len__(self) -> int:
        return int(self.request_id.shape[0])

    def subset(self, index: np.ndarray | slice) -> RequestSet:
        """Rows ``index`` of every array (a view for slices)."""
        return RequestSet(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def arrays(self) -> dict[str, np.ndarray]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def item_feature_names(cfg: WorldConfig) -> list[str]:
    return (
        [f"feat_topic_{i}" for i in range(cfg.topic_dim)]
        + [f"feat_cat_{i}" for i in range(cfg.n_categories)]
        + [f"feat_author_{i}" for i in range(cfg.author_dim)]
        + ["feat_quality", "feat_log_duration", "feat_popularity", "feat_relevance", "feat_affinity"]
    )


def context_feature_names(cfg: WorldConfig) -> list[str]:
    return (
        [f"ctx_user_{i}" for i in range(cfg.topic_dim)]
        + [f"ctx_query_{i}" for i in range(cfg.topic_dim)]
        + ["ctx_n_intents", "ctx_watch", "ctx_hour_sin", "ctx_hour_cos"]
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _sample_candidates(
    uni: Universe, intents: np.ndarray, weights: np.ndarray, n: int, share: float, rng: np.random.Generator
) -> np.ndarray:
    """[R, n] distinct catalogue items: a share from the query's intent topics, the rest from any topic."""
    R, T = intents.shape[0], uni.topic_emb.shape[0]
    order = np.argsort(uni.item_topic, kind="stable")
    counts = np.bincount(uni.item_topic, minlength=T)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    out = np.empty((R, n), dtype=np.int64)
    draws = 3 * n
    cum_w = np.cumsum(weights, axis=1)
    for r in range(R):
        pick = np.minimum((rng.random(draws)[:, None] > cum_w[r]).sum(1), (intents[r] >= 0).sum() - 1)
        topics = np.where(rng.random(draws) < share, intents[r, pick], rng.integers(0, T, draws))
        items = order[starts[topics] + (rng.random(draws) * counts[topics]).astype(np.int64)]
        _, first = np.unique(items, return_index=True)
        unique_items = items[np.sort(first)]
        while unique_items.shape[0] < n:  # rare: top up with random catalogue items
            extra = rng.integers(0, uni.item_topic.shape[0], n)
            unique_items = np.concatenate([unique_items, np.setdiff1d(extra, unique_items)])
        out[r] = unique_items[:n]
    return out


def make_requests(cfg: WorldConfig, uni: Universe, rng: np.random.Generator) -> RequestSet:
    """Sample the whole time-ordered stream of ``cfg.n_requests`` requests."""
    R, N = cfg.n_requests, cfg.n_candidates
    ts = np.sort(rng.integers(0, STREAM_SECONDS, size=R))
    user = rng.integers(0, uni.user_taste.shape[0], size=R)
    query = rng.choice(uni.query_popularity.shape[0], size=R, p=uni.query_popularity)
    intents, weights = uni.query_intents[query], uni.query_weights[query]
    items = _sample_candidates(uni, intents, weights, N, cfg.on_intent_share, rng)

    topic = uni.item_topic[items]
    match = topic[:, :, None] == intents[:, None, :]  # [R, N, I]
    rel = (match * weights[:, None, :]).sum(-1) / weights.max(1, keepdims=True)
    aff = np.take_along_axis(uni.user_taste[user], topic, axis=1)
    quality = uni.item_quality[items]
    duration = uni.item_duration[items]
    base_logit = CLICK_BIAS + CLICK_REL * rel + CLICK_AFF * aff + CLICK_QUALITY * quality
    completion = _sigmoid(
        COMPL_BIAS + COMPL_QUALITY * quality + COMPL_AFF * aff - COMPL_DURATION * np.log(duration / 30.0)
    )
    mean_watch = duration * completion * uni.user_watch[user][:, None]
    position = np.arange(R) / max(R - 1, 1)
    watch_scale = 1.0 + cfg.drift * np.clip((position - cfg.drift_start) / cfg.drift_ramp, 0.0, 1.0)

    # The upstream ranker: a noisy pointwise estimate of click appeal and watch time.
    upstream = base_logit + 0.5 * np.log(mean_watch / 15.0) + rng.normal(scale=cfg.upstream_noise, size=(R, N))
    order = np.argsort(-upstream, axis=1, kind="stable")

    def ranked(a: np.ndarray) -> np.ndarray:
        return np.take_along_axis(a, order, axis=1)

    items, topic, rel, aff, quality, duration = map(ranked, (items, topic, rel, aff, quality, duration))
    noise = cfg.feature_noise
    author = uni.item_author[items]
    category = uni.topic_category[topic]
    item_features = np.concatenate(
        [
            uni.topic_emb[topic] + rng.normal(scale=noise, size=(R, N, cfg.topic_dim)),
            np.eye(cfg.n_categories)[category],
            uni.author_emb[author],
            (quality + rng.normal(scale=2 * noise, size=(R, N)))[..., None],
            np.log(duration)[..., None],
            uni.item_popularity[items][..., None],
            (rel + rng.normal(scale=noise, size=(R, N)))[..., None],
            (aff + rng.normal(scale=2 * noise, size=(R, N)))[..., None],
        ],
        axis=-1,
    )
    hour = 2 * np.pi * (ts % 86400) / 86400
    n_intents = (intents >= 0).sum(1)
    context_features = np.concatenate(
        [
            uni.user_taste[user] @ uni.topic_emb / np.sqrt(cfg.n_topics)
            + rng.normal(scale=noise, size=(R, cfg.topic_dim)),
            np.einsum("ri,rid->rd", weights, uni.topic_emb[np.maximum(intents, 0)])
            + rng.normal(scale=noise, size=(R, cfg.topic_dim)),
            (n_intents + rng.normal(scale=0.5, size=R))[:, None],
            (np.log(uni.user_watch[user]) + rng.normal(scale=0.1, size=R))[:, None],
            np.sin(hour)[:, None],
            np.cos(hour)[:, None],
        ],
        axis=-1,
    )
    return RequestSet(
        request_id=np.arange(R, dtype=np.int64),
        ts=ts.astype(np.int64),
        user=user,
        query=query,
        item_id=items,
        base_logit=ranked(base_logit),
        mean_watch=ranked(mean_watch),
        completion=ranked(completion),
        on_intent=(rel > 0).astype(np.float64),
        topic=topic,
        author=author,
        category=category,
        intent_topic=intents,
        intent_weight=weights,
        watch_scale=watch_scale,
        upstream_score=np.take_along_axis(upstream, order, axis=1),
        item_features=item_features.astype(np.float32),
        context_features=context_features.astype(np.float32),
    )
