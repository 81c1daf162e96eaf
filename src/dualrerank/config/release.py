"""``release`` section: the registered model, its champion alias and the promotion gate."""

from __future__ import annotations

from dataclasses import dataclass

from dualrerank.config.base import check


@dataclass(frozen=True)
class ReleaseConfig:
    model_name: str = "dual-rerank"  # registered model in the MLflow model registry
    alias: str = "champion"  # the alias the serving package follows
    min_improvement: float = 0.0  # the candidate must beat the champion by more than this (utility units)

    def __post_init__(self) -> None:
        check(self.min_improvement >= 0, "min_improvement must be >= 0")
        check(bool(self.model_name) and bool(self.alias), "model_name and alias must be non-empty")
