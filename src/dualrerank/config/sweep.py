"""``sweep`` section: headroom vs dependency strength (small worlds, the pipeline on each)."""

from __future__ import annotations

from dataclasses import dataclass

from dualrerank.config.base import check


@dataclass(frozen=True)
class SweepConfig:
    strengths: tuple[float, ...] = (0.0, 0.5, 1.0, 2.0)  # multipliers of the world's dependency strengths
    n_train_requests: int = 3000
    n_val_requests: int = 500
    n_test_requests: int = 500
    max_epochs: int = 4  # per supervised model
    stages: tuple[str, ...] = (
        "generate", "validate", "train_evaluator", "train_pointwise", "build_targets", "train_teacher", "distill",
        "evaluate",
    )  # fmt: skip

    def __post_init__(self) -> None:
        check(len(self.strengths) >= 2 and min(self.strengths) >= 0, "need >= 2 non-negative strengths")
        check(self.stages[0] == "generate" and "evaluate" in self.stages, "stages must run generate ... evaluate")
        order = list(self.stages)
        check(
            "finetune" not in order or ("explore" in order and order.index("explore") < order.index("finetune")),
            "stages: finetune reads the evaluators of explore, so explore must run before it",
        )
