"""``data`` and ``validate`` sections: where the logs come from and what a valid table is."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dualrerank.config.base import check
from dualrerank.config.svmlight import SvmlightConfig


@dataclass(frozen=True)
class RuleConfig:
    """Prior-rule inputs. A prefix that is null or matches no item feature switches its rule off (data without
    author/category identity, e.g. LETOR)."""

    author_prefix: str | None = "feat_author_"
    category_prefix: str | None = "feat_cat_"
    relevance_feature: str = "upstream_score"  # upstream_score or an item feature name
    relevance_quantile: float = 0.2  # per-request floor: this quantile of the candidates' relevance


@dataclass(frozen=True)
class RewardWeights:
    """The business objective, as weights on logged feedback.

    ``item``: per-item reward = sum of weight x feedback column (click, watch_time, label_*);
    ``page``: request-level columns (satisfaction, reformulated). Page utility =
    sum over slots of the item part + the page part. ``prior``: weights of the page-quality rules of
    ``dualrerank.rewards`` (duplicate author/category in the viewport, items below a relevance floor), which
    need no feedback and so also judge lists at serving; ``rules``: where those rules find their inputs.
    """

    item: dict[str, float] = field(default_factory=lambda: {"watch_time": 1 / 60, "click": 0.0})
    page: dict[str, float] = field(default_factory=lambda: {"satisfaction": 2.0, "reformulated": -2.0})
    # page-quality priors on the viewport (no feedback needed): reward units per offending item
    prior: dict[str, float] = field(
        default_factory=lambda: {"dup_author": -0.3, "dup_category": -0.05, "below_floor": -0.1}
    )
    rules: RuleConfig = field(default_factory=RuleConfig)


@dataclass(frozen=True)
class DataConfig:
    source: Literal["world", "parquet", "svmlight"] = "world"
    path: str | None = None  # input file (parquet/csv) or folder (svmlight: holds data.svmlight's files)
    val_fraction: float = 0.1  # non-world sources; the world uses its own request counts
    test_fraction: float = 0.1
    max_candidates: int = 64
    reward: RewardWeights = field(default_factory=RewardWeights)
    svmlight: SvmlightConfig = field(default_factory=SvmlightConfig)  # data.source: svmlight

    def __post_init__(self) -> None:
        check(self.source == "world" or self.path is not None, f"data.path is required for source {self.source!r}")
        check(0 < self.val_fraction < 1 and 0 < self.test_fraction < 1, "split fractions must be in (0, 1)")
        check(self.val_fraction + self.test_fraction < 1, "val_fraction + test_fraction must be < 1")
        check(self.max_candidates >= 2, "max_candidates must be >= 2")
        fits = self.source != "svmlight" or self.svmlight.n_candidates <= self.max_candidates
        check(fits, "data.svmlight.n_candidates must be <= data.max_candidates")


@dataclass(frozen=True)
class ValidateConfig:
    min_candidates: int = 2
    max_examples: int = 5  # example request ids per failed expectation in the report
