"""``evaluate`` section: what the offline evaluation runs and how much of it."""

from __future__ import annotations

from dataclasses import dataclass

from dualrerank.config.base import check


@dataclass(frozen=True)
class EvaluateConfig:
    bon_sizes: tuple[int, ...] = (1, 4, 16, 64)  # Best-of-N sizes (N = lists sampled, greedy included)
    bon_temperature: float = 1.0
    batch_size: int = 256
    latency_requests: int = 200  # batch-1 calls per policy (p50/p99 over these)
    serving_batch: int = 32
    serving_batch_calls: int = 20
    diagnostics_requests: int = 500
    ecg_requests: int = 200
    ecg_samples: int = 64  # M ancestral teacher samples per request
    correlation_pages: int = 8  # varied pages per test request for the evaluator-vs-truth Spearman
    seed: int = 5

    def __post_init__(self) -> None:
        check(all(n >= 1 for n in self.bon_sizes), "bon_sizes must be >= 1")
        check(self.latency_requests >= 10, "latency_requests must be >= 10")
