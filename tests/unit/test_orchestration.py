"""The flow's glue, without a flow: which failures are worth a retry, which report a failed stage attaches,
and the results table."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from dvc.lock import LockError

from dualrerank.config import ConfigError
from dualrerank.orchestration import is_transient, markdown_reports, results_markdown
from dualrerank.stages.validate import ValidationFailed
from dualrerank.validation.report import ValidationReport

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (LockError("Unable to acquire lock"), True),
        (sqlite3.OperationalError("database is locked"), True),
        (ConnectionError("tracking server unreachable"), True),
        (subprocess.CalledProcessError(-9, ["dualrerank", "run", "train_teacher"]), True),  # SIGKILL: OOM, preemption
        (subprocess.CalledProcessError(1, ["dualrerank", "run", "train_teacher"]), False),  # the stage failed
        (ValidationFailed(ValidationReport(success=False, n_rows=1, n_requests=1, n_checked=1)), False),
        (ConfigError("train_teacher.lr: unknown key"), False),
        (FileNotFoundError("data/processed/train.npz"), False),
        (ValueError("evaluate.gate.candidate_n_samples=16 is not one of evaluate.bon_sizes"), False),
    ],
)
def test_only_failures_that_can_pass_by_themselves_are_retried(exc, transient):
    assert is_transient(exc) is transient


def test_a_failed_stage_attaches_the_markdown_reports_it_declares(tmp_path: Path):
    (tmp_path / "dvc.yaml").write_text((ROOT / "dvc.yaml").read_text())
    assert markdown_reports(tmp_path, "validate") == []
    report = tmp_path / "data/reports/validation.md"
    report.parent.mkdir(parents=True)
    report.write_text("# Data validation: FAILED\n")
    assert markdown_reports(tmp_path, "validate") == [report]
    assert markdown_reports(tmp_path, "train_teacher") == []


def test_results_table_shows_stages_policies_and_the_release(tmp_path: Path):
    reports = tmp_path / "data/reports"
    reports.mkdir(parents=True)
    policies = {"upstream": {"true_utility": 1.25, "heldout_evaluator_utility": 1.0}}
    policies["nar_kd_bon4"] = {"true_utility": None, "heldout_evaluator_utility": 1.5}
    (reports / "metrics.json").write_text(json.dumps({"policies": policies}))
    release = {"promoted": False, "registered_version": "3", "reason": "quality gate failed", "champion_version": "2"}
    (reports / "release.json").write_text(json.dumps(release))
    steps = [{"stage": "evaluate", "status": "ran", "seconds": 12.34}, {"stage": "validate", "status": "up to date"}]

    table = results_markdown(tmp_path, steps)

    assert "| evaluate | ran | 12.3 |" in table and "| validate | up to date | 0.0 |" in table
    assert "| upstream | 1.2500 | 1.0000 |" in table and "| nar_kd_bon4 | n/a | 1.5000 |" in table
    assert "Version 3 not promoted: quality gate failed." in table and "Champion: version 2." in table
