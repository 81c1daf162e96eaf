"""The world's population: topics, categories, authors, items, users and queries (latent variables).

Notation: ``T`` topics, ``C`` categories, ``A`` authors, ``M`` catalogue items, ``U`` users, ``Q`` queries,
``I`` maximum intents per query (3).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dualrerank.config.world import WorldConfig

MAX_INTENTS = 3


@dataclass(frozen=True)
class Universe:
    """Latent state shared by all requests. Arrays are indexed by entity id."""

    topic_emb: np.ndarray  # [T, topic_dim] topic embeddings
    topic_category: np.ndarray  # [T] category of each topic
    transition: np.ndarray  # [T, T] asymmetric affinity of topic b shown right after topic a
    author_emb: np.ndarray  # [A, author_dim] observed author embedding
    author_topic: np.ndarray  # [A] home topic of each author
    item_author: np.ndarray  # [M]
    item_topic: np.ndarray  # [M]
    item_quality: np.ndarray  # [M] latent quality (standard normal scale)
    item_duration: np.ndarray  # [M] seconds
    item_popularity: np.ndarray  # [M] log-popularity (observed noisily)
    user_taste: np.ndarray  # [U, T] latent affinity of each user for each topic
    user_watch: np.ndarray  # [U] multiplicative watch propensity
    query_intents: np.ndarray  # [Q, I] intent topics, -1 = unused
    query_weights: np.ndarray  # [Q, I] intent weights (sum to 1 over used intents)
    query_popularity: np.ndarray  # [Q] sampling probabilities of queries

    @property
    def items_by_topic(self) -> list[np.ndarray]:
        return [np.flatnonzero(self.item_topic == t) for t in range(self.topic_emb.shape[0])]


def make_universe(cfg: WorldConfig, rng: np.random.Generator) -> Universe:
    """Sample the population. Deterministic given ``rng``'s state."""
    T, C, A, M = cfg.n_topics, cfg.n_categories, cfg.n_authors, cfg.n_items
    topic_emb = rng.normal(size=(T, cfg.topic_dim))
    topic_category = np.arange(T) * C // T  # contiguous groups of topics share a category
    transition = rng.normal(size=(T, T))
    np.fill_diagonal(transition, -1.0)  # the same topic twice in a row is mildly boring

    author_emb = rng.normal(size=(A, cfg.author_dim))
    author_topic = rng.integers(0, T, size=A)
    author_bias = rng.normal(scale=0.6, size=A)
    # Zipf-like author productivity: a few prolific authors produce many items (redundancy risk).
    productivity = 1.0 / np.arange(1, A + 1) ** 0.9
    item_author = rng.choice(A, size=M, p=productivity / productivity.sum())
    stays_home = rng.random(M) < 0.85
    item_topic = np.where(stays_home, author_topic[item_author], rng.integers(0, T, size=M))
    item_quality = author_bias[item_author] + rng.normal(scale=0.8, size=M)
    item_duration = np.clip(np.exp(rng.normal(np.log(30.0), 0.6, size=M)), 5.0, 300.0)
    item_popularity = 0.7 * item_quality + rng.normal(scale=0.7, size=M)

    U = cfg.n_users
    user_taste = rng.normal(scale=0.5, size=(U, T))
    favourites = np.argsort(rng.random((U, T)), axis=1)[:, :3]
    np.put_along_axis(user_taste, favourites, np.take_along_axis(user_taste, favourites, 1) + 1.0, axis=1)
    user_watch = np.exp(rng.normal(scale=0.25, size=U))

    Q = cfg.n_queries
    n_intents = rng.choice([1, 2, 3], size=Q, p=[0.55, 0.3, 0.15])
    query_intents = np.full((Q, MAX_INTENTS), -1)
    query_weights = np.zeros((Q, MAX_INTENTS))
    for q in range(Q):
        k = n_intents[q]
        query_intents[q, :k] = rng.choice(T, size=k, replace=False)
        query_weights[q, :k] = np.sort(rng.dirichlet(np.full(k, 3.0)))[::-1]
    query_popularity = 1.0 / np.arange(1, Q + 1) ** 0.8
    query_popularity = rng.permutation(query_popularity / query_popularity.sum())

    return Universe(
        topic_emb=topic_emb,
        topic_category=topic_category,
        transition=transition,
        author_emb=author_emb,
        author_topic=author_topic,
        item_author=item_author,
        item_topic=item_topic,
        item_quality=item_quality,
        item_duration=item_duration,
        item_popularity=item_popularity,
        user_taste=user_taste,
        user_watch=user_watch,
        query_intents=query_intents,
        query_weights=query_weights,
        query_popularity=query_popularity,
    )
