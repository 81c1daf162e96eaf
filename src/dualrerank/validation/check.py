"""Validate a log table against the data contract: ``validate_table`` (the stage) and ``validate_file``
(``dualrerank validate PATH``).

The run has two phases. The schema phase (columns exist, numeric dtypes, the table has rows) runs first;
if it fails, the row and request checks are skipped, because they would only crash or repeat the same
problem on every row. The content phase validates three frames (rows, the feedback view, one row per
request), each as one GX suite.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pandas as pd

from dualrerank.config.data import RewardWeights, ValidateConfig
from dualrerank.data import schema as S
from dualrerank.data.tables import read_table
from dualrerank.validation.frames import columns_frame, feedback_frame, requests_frame
from dualrerank.validation.report import ValidationReport

__all__ = ["ValidationReport", "read_table", "validate_file", "validate_table", "write_report"]

MAX_EXAMPLE_ROWS = 5000  # cap on failing rows GX hands back per expectation (counts stay exact)


def validate_table(
    table: pd.DataFrame, cfg: ValidateConfig, max_candidates: int, reward: RewardWeights | None = None
) -> ValidationReport:
    """Run the whole suite on ``table``; never raises on bad data, only reports it. With ``reward`` (the business
    objective ``data.reward``), a non-zero weight on a column the table lacks is a failure naming it."""
    from dualrerank.validation import suite  # imports great_expectations: seconds, so only when used
    from dualrerank.validation.gx_runner import GxRunner
    from dualrerank.validation.results import to_failure

    t0 = time.perf_counter()
    runner = GxRunner()
    columns = [str(c) for c in table.columns]
    results = runner.run("columns", columns_frame(table), suite.column_list_checks())
    results += runner.run("schema", table, suite.schema_checks(columns, reward))
    schema_ok = all(r.success for r in results)
    skipped = None if schema_ok else "row and request checks (the table's columns do not fit the contract)"
    n_requests = 0
    if schema_ok:
        # enough failing rows to show max_examples distinct requests even when whole requests fail
        max_rows = min(MAX_EXAMPLE_ROWS, cfg.max_examples * max(max_candidates, 1))
        rid = S.REQUEST_ID
        results += runner.run("rows", table, suite.row_checks(columns), rid, max_rows)
        results += runner.run("feedback", feedback_frame(table), suite.feedback_checks(columns), rid, max_rows)
        requests = requests_frame(table)
        n_requests = len(requests)
        results += runner.run("requests", requests, suite.request_checks(columns, cfg, max_candidates), rid, max_rows)
    failures = [f for f in (to_failure(r, cfg.max_examples) for r in results) if f is not None]
    return ValidationReport(
        success=not failures,
        n_rows=len(table),
        n_requests=n_requests,
        n_checked=len(results),
        failures=failures,
        skipped=skipped,
        seconds=time.perf_counter() - t0,
    )


def write_report(report: ValidationReport, json_path: Path) -> Path:
    """Write ``json_path`` and the markdown report beside it (same name, ``.md``); returns the latter."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report.to_dict(), indent=2))
    md_path = json_path.with_suffix(".md")
    md_path.write_text(report.to_markdown())
    return md_path


def validate_file(path: Path, root: Path, report_path: Path | None) -> int:
    """``dualrerank validate PATH``: 0 valid, 1 invalid, 2 unreadable input (message on stderr).

    Limits come from ``root/params.yaml`` (``validate`` section, ``data.max_candidates``), the one source
    of parameters; a missing or invalid parameter file is an error (exit 2). With ``data.source: parquet`` the
    columns ``data.reward`` weighs are checked too.
    """
    from dualrerank.config import ConfigError, load_params

    try:
        params = load_params(root / "params.yaml")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    cfg, max_candidates = params.validate, params.data.max_candidates
    if not path.is_file():
        print(f"error: {path} does not exist or is not a file", file=sys.stderr)
        return 2
    try:
        table = read_table(path)
    except Exception as exc:  # any reader error means "unreadable": report it, do not trace back
        print(f"error: cannot read {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    # the business objective is checked once params.yaml points at the user's logs (the world's is the default)
    reward = params.data.reward if params.data.source == "parquet" else None
    report = validate_table(table, cfg, max_candidates, reward)
    print(report.summary(), flush=True)
    if report_path is not None:
        md_path = write_report(report, report_path)
        print(f"report: {report_path} and {md_path}")
    return 0 if report.success else 1
