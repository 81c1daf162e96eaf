"""A readable validation report built from GX results: what failed, where, how often, examples.

GX results are verbose and hold numpy scalars; the report keeps, for each failed expectation, the
expectation name, the contract column, how many rows (or requests, or columns) fail and a few example
``request_id`` values and bad values, all plain JSON types.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Failure:
    """One failed expectation. ``unit`` says what ``n_failing`` counts: rows, requests, columns or table."""

    expectation: str
    column: str
    rule: str
    unit: str
    n_failing: int
    examples: list[Any] = field(default_factory=list)  # example request ids
    bad_values: list[Any] = field(default_factory=list)
    observed: Any = None  # schema checks: what GX saw (a dtype name)
    error: str | None = None  # GX could not evaluate the expectation

    @property
    def count(self) -> str:
        """``1 row``, ``3 rows``, ``2 requests``."""
        noun = self.unit[:-1] if self.n_failing == 1 and self.unit.endswith("s") else self.unit
        return f"{self.n_failing} {noun}"

    def line(self) -> str:
        """``FAILED expect_x on col: 3 rows (requests 17, 42; values -1.0) [rule]``."""
        head = f"FAILED {self.expectation} on {self.column}: "
        if self.unit in ("columns", "table"):
            head += self.rule + (f" (observed {self.observed})" if self.observed is not None else "")
        else:
            head += self.count
            details = []
            if self.examples:
                details.append("requests " + _join(self.examples))
            if self.bad_values:
                details.append("values " + _join(self.bad_values))
            head += f" ({'; '.join(details)})" if details else ""
            head += f" [{self.rule}]"
        return head + (f" error: {self.error}" if self.error else "")


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of one validation run; ``to_dict`` is what ``validation.json`` holds."""

    success: bool
    n_rows: int
    n_requests: int
    n_checked: int
    failures: list[Failure] = field(default_factory=list)
    skipped: str | None = None  # why later checks did not run (a broken schema stops early)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "success": self.success,
            "n_rows": self.n_rows,
            "n_requests": self.n_requests,
            "n_checked": self.n_checked,
            "n_failed": len(self.failures),
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            "failures": [asdict(f) for f in self.failures],
        }

    def summary(self) -> str:
        head = (
            f"validation {'passed' if self.success else 'FAILED'}: {self.n_rows} rows, {self.n_requests} requests, "
            f"{self.n_checked} expectations checked, {len(self.failures)} failed"
        )
        lines = [head, *(f"  {f.line()}" for f in self.failures)]
        if self.skipped:
            lines.append(f"  skipped: {self.skipped}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        status = "passed" if self.success else "FAILED"
        lines = [
            f"# Data validation: {status}",
            "",
            f"- rows: {self.n_rows}",
            f"- requests: {self.n_requests}",
            f"- expectations checked: {self.n_checked}",
            f"- expectations failed: {len(self.failures)}",
        ]
        if self.skipped:
            lines.append(f"- skipped: {self.skipped}")
        if self.failures:
            lines += [
                "",
                "| expectation | column | rule | failing | example requests | example values |",
                "|---|---|---|---|---|---|",
            ]
            for f in self.failures:
                values = f.bad_values if f.bad_values else ([f.observed] if f.observed is not None else [])
                if f.error:
                    values = [*values, f"error: {f.error}"]
                cells = [f"`{f.expectation}`", f"`{f.column}`", f.rule, f.count,
                         _join(f.examples), _join(values)]  # fmt: skip
                lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        return "\n".join(lines) + "\n"


def _join(values: list[Any]) -> str:
    return ", ".join("null" if v is None else str(v) for v in values)


def plain(value: Any) -> Any:
    """A JSON-friendly copy of a GX value: numpy scalars to Python, NaN/inf and NA to strings/None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    try:
        if value != value:  # pd.NA, NaT
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def distinct(values: list[Any], limit: int) -> list[Any]:
    """The first ``limit`` distinct values, in order (values may be unhashable lists/dicts)."""
    out: list[Any] = []
    if limit <= 0:
        return out
    for v in values:
        if v not in out:
            out.append(v)
            if len(out) == limit:
                break
    return out
