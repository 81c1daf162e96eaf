"""``data`` and ``validate`` sections: where the logs come from and what a valid table is."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from dualrerank.config.base import Section, check
from dualrerank.config.svmlight import SvmlightConfig


class RuleConfig(Section):
    """Prior-rule inputs. A prefix that is null or matches no item feature switches its rule off (data without
    author/category identity, e.g. LETOR)."""

    author_prefix: str | None
    category_prefix: str | None
    relevance_feature: str  # upstream_score or an item feature name
    relevance_quantile: float  # per-request floor: this quantile of the candidates' relevance


class RewardWeights(Section):
    """The business objective, as weights on logged feedback.

    ``item``: per-item reward = sum of weight x feedback column (click, watch_time, label_*);
    ``page``: request-level columns (satisfaction, reformulated). Page utility =
    sum over slots of the item part + the page part. ``prior``: weights of the page-quality rules of
    ``dualrerank.rewards`` (duplicate author/category in the viewport, items below a relevance floor), which
    need no feedback and so also judge lists at serving; ``rules``: where those rules find their inputs.
    """

    item: dict[str, float]
    page: dict[str, float]
    # page-quality priors on the viewport (no feedback needed): reward units per offending item
    prior: dict[str, float]
    rules: RuleConfig


class DataConfig(Section):
    source: Literal["world", "parquet", "svmlight"]
    path: str | None  # input file (parquet/csv) or folder (svmlight: holds data.svmlight's files)
    val_fraction: float  # non-world sources; the world uses its own request counts
    test_fraction: float
    max_candidates: int
    reward: RewardWeights
    svmlight: SvmlightConfig  # data.source: svmlight

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.source == "world" or self.path is not None, f"data.path is required for source {self.source!r}")
        check(0 < self.val_fraction < 1 and 0 < self.test_fraction < 1, "split fractions must be in (0, 1)")
        check(self.val_fraction + self.test_fraction < 1, "val_fraction + test_fraction must be < 1")
        check(self.max_candidates >= 2, "max_candidates must be >= 2")
        fits = self.source != "svmlight" or self.svmlight.n_candidates <= self.max_candidates
        check(fits, "data.svmlight.n_candidates must be <= data.max_candidates")
        return self


class ValidateConfig(Section):
    min_candidates: int
    max_examples: int  # example request ids per failed expectation in the report
