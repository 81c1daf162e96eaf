"""``benchmark`` section: the research studies of ``make benchmark`` (never part of the production cycle).

Fine-tuning studies reuse the ``finetune`` section for everything they do not vary: both methods run on the
production stream, with the production group size, steps and reward.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dualrerank.config.base import check


@dataclass(frozen=True)
class DriftConfig:
    """Reward drift injected into the stream [ours]: one component's scale ramps to ``factor`` mid-stream."""

    component: str = "eval_watch_time"
    factor: float = 0.2
    start: float = 0.4  # stream position (0..1) where the ramp starts
    ramp: float = 0.1  # ramp length, as a share of the stream
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5)

    def __post_init__(self) -> None:
        check(self.factor > 0 and 0 <= self.start <= 1 and self.ramp >= 0, "drift: factor > 0, start in [0, 1]")
        check(len(self.seeds) >= 2, "benchmark.drift.seeds: at least 2 seeds (the spread is a result)")


@dataclass(frozen=True)
class ScalingConfig:
    """The production cycle's stage times and peak memory at multiples of the training requests."""

    factors: tuple[int, ...] = (1, 4, 16)
    max_epochs: int = 1  # one epoch per supervised model is enough for the trend

    def __post_init__(self) -> None:
        check(all(f >= 1 for f in self.factors) and self.max_epochs >= 1, "scaling: factors and max_epochs >= 1")


@dataclass(frozen=True)
class BenchmarkConfig:
    lr_grid: tuple[float, ...] = (1e-4, 3e-4, 1e-3)  # the same grid for both methods
    selection: Literal["heldout_val", "train_val"] = "heldout_val"  # greedy-list evaluator utility on validation
    seeds: tuple[int, ...] = (1, 2)  # extra runs at each method's chosen rate: the test gain's spread over seeds
    probe_requests: int | None = None  # validation requests of the probe curves; None: all of them
    drift: DriftConfig = field(default_factory=DriftConfig)
    scaling: ScalingConfig = field(default_factory=ScalingConfig)

    def __post_init__(self) -> None:
        check(len(self.lr_grid) >= 1 and all(lr > 0 for lr in self.lr_grid), "benchmark.lr_grid needs positive rates")
        check(self.probe_requests is None or self.probe_requests >= 1, "benchmark.probe_requests >= 1 or null")
