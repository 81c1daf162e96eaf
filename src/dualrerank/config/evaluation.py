"""``evaluate`` section: what the offline evaluation runs and how much of it."""

from __future__ import annotations

from dataclasses import dataclass, field

from dualrerank.config.base import check


@dataclass(frozen=True)
class GateConfig:
    """What ships must pass: the released policy against the baseline it replaces, and its latency (release adds
    the current champion). Judged by the held-out evaluator, as a real deployment would: never by the world."""

    candidate_n_samples: int = 16  # the released policy: Best-of-N with this many lists
    min_gain_vs_baseline: float = 0.0  # candidate minus score-and-sort, held-out evaluator utility (paired mean)
    max_latency_ms_p99: float = 20.0  # candidate, in-process, batch 1


@dataclass(frozen=True)
class EvaluateConfig:
    bon_sizes: tuple[int, ...] = (1, 4, 16, 64)  # Best-of-N sizes (N = lists sampled, greedy included)
    bon_temperature: float = 1.0
    batch_size: int = 256
    latency_requests: int = 200  # batch-1 calls per policy (p50/p99 over these)
    serving_batch: int = 32
    serving_batch_calls: int = 20
    diagnostics_requests: int = 500  # the benchmark's diagnostics (PTAR, collapse)
    ecg_requests: int = 200
    ecg_samples: int = 64  # M ancestral teacher samples per request
    correlation_pages: int = 8  # varied pages per test request for the evaluator-vs-truth Spearman (benchmark)
    seed: int = 5
    gate: GateConfig = field(default_factory=GateConfig)

    def __post_init__(self) -> None:
        check(all(n >= 1 for n in self.bon_sizes), "bon_sizes must be >= 1")
        check(self.latency_requests >= 10, "latency_requests must be >= 10")
