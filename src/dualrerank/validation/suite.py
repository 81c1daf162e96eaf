"""The data contract as Great Expectations expectations, written in code (docs/validation.md).

Each function returns the expectations for one frame (see ``frames.py``): the table's column list,
the rows, the narrow feedback view and the one-row-per-request aggregate. Every expectation carries
``meta`` that the report reads: ``rule`` (the contract sentence it checks), ``column`` (the contract
column it is about, when GX sees a derived one) and ``unit`` (what ``n_failing`` counts).

Row-level failures count rows; rules about a whole request count requests; schema failures count
columns (or the table).
"""

from __future__ import annotations

from typing import Any

import great_expectations.expectations as gxe
from great_expectations.expectations import Expectation
from great_expectations.expectations.row_conditions import Column

from dualrerank.config.data import RewardWeights, ValidateConfig
from dualrerank.data import schema as S
from dualrerank.validation.frames import (
    DISTINCT_PREFIX,
    GROUP_FEATURES,
    GROUP_FEEDBACK,
    GROUP_UPSTREAM,
    N_CANDIDATES,
    UPSTREAM_COLUMNS,
    request_level_columns,
)

# dtype names GX resolves: numpy names directly, pandas nullable dtypes by their class name in
# ``pandas`` (``Int64Dtype``; GX's ``getattr(pd, "Int64")`` finds nothing on pandas 3).
NUMERIC_TYPES = [
    *(f"{kind}{bits}" for kind in ("int", "uint") for bits in (8, 16, 32, 64)),
    "float16", "float32", "float64",
    *(f"{kind}{bits}Dtype" for kind in ("Int", "UInt") for bits in (8, 16, 32, 64)),
    "Float32Dtype", "Float64Dtype",
]  # fmt: skip
INFINITIES = [float("inf"), float("-inf")]
ZERO_ONE = [0, 1]


def _meta(rule: str, unit: str, column: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"rule": rule, "unit": unit}
    if column is not None:
        meta["column"] = column
    return meta


def _present(columns: list[str], wanted: tuple[str, ...] | list[str]) -> list[str]:
    return [c for c in wanted if c in columns]


def numeric_columns(columns: list[str]) -> list[str]:
    """Columns the contract requires to be numeric (those present)."""
    fixed = _present(columns, [*UPSTREAM_COLUMNS, S.WATCH_TIME, S.CLICK, S.LOGGED_POSITION])
    return [*S.context_columns(columns), *S.item_columns(columns), *fixed]


def column_list_checks() -> list[Expectation]:
    """On ``columns_frame``: the "at least one of" column rules, which no single column can express."""
    rules = {
        GROUP_FEATURES: "at least one feat_* column",
        GROUP_UPSTREAM: "upstream_score or upstream_rank present",
        GROUP_FEEDBACK: "at least one feedback column: click, watch_time or label_*",
    }
    return [
        gxe.ExpectColumnDistinctValuesToContainSet(
            column="group", value_set=[group], meta=_meta(rule, "columns", group)
        )
        for group, rule in rules.items()
    ]


def schema_checks(columns: list[str], reward: RewardWeights | None = None) -> list[Expectation]:
    """On the rows: the table has rows, required columns exist, numeric columns have numeric dtypes, and every
    column the business objective ``reward`` weighs (a non-zero weight) exists."""
    exps: list[Expectation] = [
        gxe.ExpectTableRowCountToBeBetween(min_value=1, meta=_meta("the table has at least one row", "table", "*"))
    ]
    exps += [gxe.ExpectColumnToExist(column=c, meta=_meta("required column", "columns")) for c in S.REQUIRED_COLUMNS]
    weighed = {} if reward is None else {**reward.item, **reward.page}
    exps += [
        gxe.ExpectColumnToExist(column=c, meta=_meta(f"data.reward weighs {c} ({w:g}): the table needs it", "columns"))
        for c, w in weighed.items()
        if w != 0
    ]
    exps += [
        gxe.ExpectColumnValuesToBeInTypeList(column=c, type_list=NUMERIC_TYPES, meta=_meta("numeric dtype", "columns"))
        for c in numeric_columns(columns)
    ]
    return exps


def row_checks(columns: list[str]) -> list[Expectation]:
    """On the rows: required values, finite numbers, value ranges, uniqueness."""
    ctx, feats = S.context_columns(columns), S.item_columns(columns)
    upstream = _present(columns, UPSTREAM_COLUMNS)
    rows = "rows"
    exps: list[Expectation] = [
        gxe.ExpectColumnValuesToNotBeNull(column=c, meta=_meta("no nulls in a required column", rows))
        for c in [S.REQUEST_ID, S.TS, S.ITEM_ID, *ctx, *feats, *upstream]
    ]
    exps += [
        gxe.ExpectColumnValuesToNotBeInSet(column=c, value_set=INFINITIES, meta=_meta("finite values", rows))
        for c in [*feats, *ctx, *_present(columns, [S.UPSTREAM_SCORE])]
    ]
    exps += [gxe.ExpectColumnValuesToBeBetween(column=S.LOGGED_POSITION, min_value=1, meta=_meta("1-based", rows))]
    exps += [
        gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0, meta=_meta("watch_time >= 0", rows))
        for c in _present(columns, [S.WATCH_TIME])
    ]
    exps += [
        gxe.ExpectColumnValuesToBeInSet(column=c, value_set=ZERO_ONE, meta=_meta("click in {0, 1}", rows))
        for c in _present(columns, [S.CLICK])
    ]
    exps += [
        gxe.ExpectColumnValuesToBeInSet(column=c, value_set=ZERO_ONE, meta=_meta(f"{c} in {{0, 1}}", rows))
        for c in _present(columns, S.REQUEST_LEVEL_COLUMNS)
    ]
    exps += [
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[S.REQUEST_ID, S.ITEM_ID],
            meta=_meta("an item appears once per request", rows, f"{S.REQUEST_ID},{S.ITEM_ID}"),
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=[S.REQUEST_ID, S.LOGGED_POSITION],
            ignore_row_if="any_value_is_missing",  # unshown rows all have a null position
            meta=_meta("a position is used once per request", rows, S.LOGGED_POSITION),
        ),
    ]
    return exps


def feedback_checks(columns: list[str]) -> list[Expectation]:
    """On ``feedback_frame``: positions within the request's candidate count; feedback exactly on shown rows."""
    shown, not_shown = Column(S.LOGGED_POSITION).is_not_null(), Column(S.LOGGED_POSITION).is_null()
    exps: list[Expectation] = [
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A=N_CANDIDATES,
            column_B=S.LOGGED_POSITION,
            or_equal=True,
            ignore_row_if="either_value_is_missing",
            meta=_meta("logged_position <= number of candidates of the request", "rows", S.LOGGED_POSITION),
        )
    ]
    for c in S.feedback_columns(columns):
        exps += [
            gxe.ExpectColumnValuesToBeNull(
                column=c, row_condition=not_shown, meta=_meta("feedback only on shown rows", "rows")
            ),
            gxe.ExpectColumnValuesToNotBeNull(
                column=c, row_condition=shown, meta=_meta("feedback present on shown rows", "rows")
            ),
        ]
    return exps


def request_checks(columns: list[str], cfg: ValidateConfig, max_candidates: int) -> list[Expectation]:
    """On ``requests_frame``: candidate counts and request-level columns constant within a request."""
    exps: list[Expectation] = [
        gxe.ExpectColumnValuesToBeBetween(
            column=N_CANDIDATES,
            min_value=cfg.min_candidates,
            max_value=max_candidates,
            meta=_meta(f"{cfg.min_candidates} to {max_candidates} candidates per request", "requests"),
        )
    ]
    exps += [
        gxe.ExpectColumnValuesToBeBetween(
            column=DISTINCT_PREFIX + c,
            max_value=1,
            meta=_meta("one value per request (distinct values <= 1)", "requests", c),
        )
        for c in request_level_columns(columns)
    ]
    return exps
