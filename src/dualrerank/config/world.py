"""``world`` section: every knob of the simulated world (see docs/world.md for the formulas)."""

from __future__ import annotations

from dataclasses import dataclass

from dualrerank.config.base import check


@dataclass(frozen=True)
class WorldConfig:
    """Knobs of the simulated world. Strength knobs set to 0 switch a dependency off."""

    seed: int = 20261123
    # request shape and stream size
    n_candidates: int = 50
    page_len: int = 10
    viewport: int = 4
    n_train_requests: int = 12000
    n_val_requests: int = 1500
    n_test_requests: int = 1500
    # population
    n_topics: int = 16
    n_categories: int = 8
    n_authors: int = 1500
    n_items: int = 20000
    n_users: int = 4000
    n_queries: int = 1200
    topic_dim: int = 8  # width of the (noisy) topic embedding features
    author_dim: int = 4  # width of the exact author embedding features
    on_intent_share: float = 0.7  # share of candidates retrieved from the query's intents
    # observed features and upstream ranker
    feature_noise: float = 0.35
    upstream_noise: float = 0.6
    logging_temperature: float = 0.6  # Plackett-Luce temperature of the logging policy
    # dependency strengths (0 = off)
    redundancy: float = 0.6
    intent_coverage: float = 0.6
    context: float = 0.3
    # drift of the watch-time scale over the stream: scale = 1 + drift * ramp(position)
    drift: float = 0.0
    drift_start: float = 0.5  # stream position (0..1) where the ramp starts
    drift_ramp: float = 0.1  # length of the ramp, as a share of the stream
    # layout and utility constants
    exposure_decay: float = 0.7  # per-row exposure decay after the viewport
    competition: float = 0.5  # side-by-side competition at context=1
    sim_author: float = 1.0
    sim_topic: float = 0.35
    sim_category: float = 0.1
    sat_prob: float = 0.6  # sigma: P(satisfied | engaged and completed)
    reform_prob: float = 0.4  # rho: P(reformulate | page failed the query)
    sat_weight: float = 2.0  # lambda_sat, in watch-minutes
    reform_weight: float = 2.0  # lambda_ref, in watch-minutes
    watch_shape: float = 2.0  # Gamma shape of watch time given a click
    # oracle
    oracle_beam: int = 256
    oracle_max_enumeration: int = 200000

    def __post_init__(self) -> None:
        check(self.n_candidates >= 2, "n_candidates must be >= 2")
        check(1 <= self.viewport <= self.page_len, "need 1 <= viewport <= page_len")
        check(self.page_len <= self.n_candidates, "page_len must be <= n_candidates")
        check(self.viewport % 2 == 0, "viewport must be a whole number of dual-column rows (even)")
        check(self.n_categories <= self.n_topics, "n_categories must be <= n_topics")
        check(min(self.redundancy, self.intent_coverage, self.context) >= 0, "strengths must be >= 0")
        check(self.intent_coverage <= 1.0, "intent_coverage is a mixture weight in [0, 1]")
        check(self.sat_prob + self.reform_prob <= 1.0, "sat_prob + reform_prob must be <= 1")
        check(0 < self.exposure_decay <= 1, "exposure_decay must be in (0, 1]")
        check(0 <= self.competition <= 1, "competition must be in [0, 1]")
        check(self.oracle_beam >= 1, "oracle_beam must be >= 1")
        check(min(self.n_train_requests, self.n_val_requests, self.n_test_requests) >= 1, "request counts >= 1")

    @property
    def n_requests(self) -> int:
        return self.n_train_requests + self.n_val_requests + self.n_test_requests
