"""``world`` section: every knob of the simulated world (see docs/world.md for the formulas)."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from dualrerank.config.base import Section, check


class WorldConfig(Section):
    """Knobs of the simulated world. Strength knobs set to 0 switch a dependency off."""

    seed: int
    # request shape and stream size
    n_candidates: int
    page_len: int
    viewport: int
    n_train_requests: int
    n_val_requests: int
    n_test_requests: int
    # population
    n_topics: int
    n_categories: int
    n_authors: int
    n_items: int
    n_users: int
    n_queries: int
    topic_dim: int  # width of the (noisy) topic embedding features
    author_dim: int  # width of the exact author embedding features
    on_intent_share: float  # share of candidates retrieved from the query's intents
    # observed features and upstream ranker
    feature_noise: float
    upstream_noise: float
    logging_temperature: float  # Plackett-Luce temperature of the logging policy
    # dependency strengths (0 = off)
    redundancy: float
    intent_coverage: float
    context: float
    # drift of the watch-time scale over the stream: scale = 1 + drift * ramp(position)
    drift: float
    drift_start: float  # stream position (0..1) where the ramp starts
    drift_ramp: float  # length of the ramp, as a share of the stream
    # layout and utility constants
    exposure_decay: float  # per-row exposure decay after the viewport
    competition: float  # side-by-side competition at context=1
    sim_author: float
    sim_topic: float
    sim_category: float
    sat_prob: float  # sigma: P(satisfied | engaged and completed)
    reform_prob: float  # rho: P(reformulate | page failed the query)
    sat_weight: float  # lambda_sat, in watch-minutes
    reform_weight: float  # lambda_ref, in watch-minutes
    watch_shape: float  # Gamma shape of watch time given a click
    # oracle
    oracle_beam: int
    oracle_max_enumeration: int

    @model_validator(mode="after")
    def _check(self) -> Self:
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
        return self

    @property
    def n_requests(self) -> int:
        return self.n_train_requests + self.n_val_requests + self.n_test_requests
