"""Temporary minimal checks; replaced by the Great Expectations suite."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from dualrerank.config.data import ValidateConfig
from dualrerank.data import schema as S


@dataclass
class ValidationReport:
    success: bool
    failures: list[dict[str, Any]] = field(default_factory=list)
    n_rows: int = 0
    n_requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"success": self.success, "n_rows": self.n_rows, "n_requests": self.n_requests,
                "n_failed": len(self.failures), "failures": self.failures}

    def summary(self) -> str:
        if self.success:
            return f"validation passed: {self.n_rows} rows, {self.n_requests} requests"
        return "validation FAILED:\n" + "\n".join(f"  - {f['expectation']} on {f['column']}" for f in self.failures)


def validate_table(table: pd.DataFrame, cfg: ValidateConfig, max_candidates: int) -> ValidationReport:
    missing = [c for c in S.REQUIRED_COLUMNS if c not in table.columns]
    failures = [{"expectation": "column exists", "column": c} for c in missing]
    return ValidationReport(not failures, failures, len(table), int(table[S.REQUEST_ID].nunique()) if not missing else 0)


def validate_file(path: Path, root: Path, report_path: Path | None) -> int:
    raise NotImplementedError
