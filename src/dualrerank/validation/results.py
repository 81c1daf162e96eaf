"""Turn one GX ``ExpectationValidationResult`` into a :class:`Failure` (or nothing if it passed).

Kept apart from ``report.py`` so the report stays a plain data class that needs no GX to load.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dualrerank.data import schema as S
from dualrerank.validation.report import Failure, distinct, plain

if TYPE_CHECKING:
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult


def _error(result: ExpectationValidationResult) -> str | None:
    """GX's exception message, if the expectation could not be evaluated.

    ``exception_info`` is either one ``{"raised_exception", "exception_message"}`` dict or a dict of
    them keyed by metric, depending on where GX caught the error.
    """
    info: Any = result.exception_info or {}
    candidates = [info] if "raised_exception" in info else list(info.values())
    for item in candidates:
        if isinstance(item, dict) and item.get("raised_exception"):
            return str(item.get("exception_message"))
    return None


def _column(kwargs: dict[str, Any], meta: dict[str, Any]) -> str:
    if "column" in meta:
        return str(meta["column"])
    if "column" in kwargs:
        return str(kwargs["column"])
    for key in ("column_list", "column_B"):
        if key in kwargs:
            return ",".join(map(str, kwargs[key])) if isinstance(kwargs[key], list) else str(kwargs[key])
    return "*"


def _bad_values(result: dict[str, Any], limit: int) -> list[Any]:
    values = [plain(v) for v in result.get("partial_unexpected_list") or []]
    values = [tuple(v.values()) if isinstance(v, dict) else v for v in values]  # compound: (id, item)
    values = [list(v) if isinstance(v, tuple) else v for v in values]
    return [v for v in distinct(values, limit) if v is not None]


def to_failure(result: ExpectationValidationResult, max_examples: int) -> Failure | None:
    """The report entry for a failed (or unevaluable) expectation; ``None`` when it passed."""
    error = _error(result)
    if result.success and error is None:
        return None
    config = result.expectation_config
    assert config is not None  # GX always attaches the configuration it validated
    meta: dict[str, Any] = dict(config.meta or {})
    unit = str(meta.get("unit", "rows"))
    res: dict[str, Any] = dict(result.result or {})
    observed = plain(res.get("observed_value"))
    if unit in ("columns", "table"):
        count, examples, values = 1, [], []
        observed = observed if not isinstance(observed, list) else None
    else:
        count = int(res.get("unexpected_count") or 0)
        index_rows = res.get("partial_unexpected_index_list") or []
        ids = [plain(row.get(S.REQUEST_ID)) for row in index_rows if isinstance(row, dict)]
        examples = distinct(ids, max_examples)
        values, observed = _bad_values(res, max_examples), None
    return Failure(
        expectation=str(config.type),
        column=_column(dict(config.kwargs), meta),
        rule=str(meta.get("rule", "")),
        unit=unit,
        n_failing=count,
        examples=examples,
        bad_values=values,
        observed=observed,
        error=error,
    )
