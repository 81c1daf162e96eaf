"""``sweep`` section: headroom vs dependency strength (small worlds, the pipeline on each)."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from dualrerank.config.base import Section, check


class SweepConfig(Section):
    strengths: tuple[float, ...]  # multipliers of the world's dependency strengths
    n_train_requests: int
    n_val_requests: int
    n_test_requests: int
    max_epochs: int  # per supervised model
    stages: tuple[str, ...]

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(len(self.strengths) >= 2 and min(self.strengths) >= 0, "need >= 2 non-negative strengths")
        check(self.stages[0] == "generate" and "evaluate" in self.stages, "stages must run generate ... evaluate")
        order = list(self.stages)
        check(
            "finetune" not in order or ("explore" in order and order.index("explore") < order.index("finetune")),
            "stages: finetune reads the evaluators of explore, so explore must run before it",
        )
        return self
