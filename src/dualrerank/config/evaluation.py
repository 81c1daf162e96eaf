"""``evaluate`` section: what the offline evaluation runs and how much of it."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from dualrerank.config.base import Section, check


class GateConfig(Section):
    """What ships must pass: the released policy against the baseline it replaces, and its latency (release adds
    the current champion). Judged by the held-out evaluator, as a real deployment would: never by the world."""

    candidate_n_samples: int  # the released policy: Best-of-N with this many lists
    min_gain_vs_baseline: float  # candidate minus score-and-sort, held-out evaluator utility (paired mean)
    max_latency_ms_p99: float  # candidate, in-process, batch 1


class EvaluateConfig(Section):
    bon_sizes: tuple[int, ...]  # Best-of-N sizes (N = lists sampled, greedy included)
    bon_temperature: float
    batch_size: int
    latency_requests: int  # batch-1 calls per policy (p50/p99 over these)
    serving_batch: int
    serving_batch_calls: int
    diagnostics_requests: int  # the benchmark's diagnostics (PTAR, collapse)
    ecg_requests: int
    ecg_samples: int  # M ancestral teacher samples per request
    correlation_pages: int  # varied pages per test request for the evaluator-vs-truth Spearman (benchmark)
    seed: int
    gate: GateConfig

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(all(n >= 1 for n in self.bon_sizes), "bon_sizes must be >= 1")
        check(self.latency_requests >= 10, "latency_requests must be >= 10")
        return self
