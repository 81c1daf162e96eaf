"""``benchmark`` section: the research studies of ``make benchmark`` (never part of the production cycle).

Fine-tuning studies reuse the ``finetune`` section for everything they do not vary: both methods run on the
production stream, with the production group size, steps and reward.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from dualrerank.config.base import Section, check


class DriftConfig(Section):
    """Reward drift injected into the stream [ours]: one component's scale ramps to ``factor`` mid-stream."""

    component: str
    factor: float
    start: float  # stream position (0..1) where the ramp starts
    ramp: float  # ramp length, as a share of the stream
    seeds: tuple[int, ...]

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.factor > 0 and 0 <= self.start <= 1 and self.ramp >= 0, "drift: factor > 0, start in [0, 1]")
        check(len(self.seeds) >= 2, "benchmark.drift.seeds: at least 2 seeds (the spread is a result)")
        return self


class ScalingConfig(Section):
    """The production cycle's stage times and peak memory at multiples of the training requests."""

    factors: tuple[int, ...]
    max_epochs: int  # one epoch per supervised model is enough for the trend

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(all(f >= 1 for f in self.factors) and self.max_epochs >= 1, "scaling: factors and max_epochs >= 1")
        return self


class BenchmarkConfig(Section):
    lr_grid: tuple[float, ...]  # the same grid for both methods
    selection: Literal["heldout_val", "train_val"]  # greedy-list evaluator utility on validation
    seeds: tuple[int, ...]  # extra runs at each method's chosen rate: the test gain's spread over seeds
    probe_requests: int | None  # validation requests of the probe curves; None: all of them
    drift: DriftConfig
    scaling: ScalingConfig

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(len(self.lr_grid) >= 1 and all(lr > 0 for lr in self.lr_grid), "benchmark.lr_grid needs positive rates")
        check(self.probe_requests is None or self.probe_requests >= 1, "benchmark.probe_requests >= 1 or null")
        return self
