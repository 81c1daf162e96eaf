"""``release`` section: the registered model, its champion alias and the promotion gate."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from dualrerank.config.base import Section, check


class ReleaseConfig(Section):
    model_name: str  # registered model in the MLflow model registry
    alias: str  # the alias the serving package follows
    min_improvement: float  # the candidate must beat the champion by more than this (utility units)

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.min_improvement >= 0, "min_improvement must be >= 0")
        check(bool(self.model_name) and bool(self.alias), "model_name and alias must be non-empty")
        return self
