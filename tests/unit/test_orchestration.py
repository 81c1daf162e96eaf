"""The flow's glue, without a flow: which failures are worth a retry, which report a failed stage attaches,
and the results table."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path

import pytest

from dualrerank.config import ConfigError, load_params
from dualrerank.orchestration import (
    StageFailed,
    dvc_command,
    is_transient,
    markdown_reports,
    overlaid_params,
    results_markdown,
    stage_environment,
    status_of,
)
from dualrerank.stages.validate import ValidationFailed
from dualrerank.validation.report import ValidationReport

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (StageFailed("train_teacher", 255, "ERROR: Unable to acquire lock. Most likely another DVC process"), True),
        (sqlite3.OperationalError("database is locked"), True),
        (ConnectionError("tracking server unreachable"), True),
        # the stage's process killed by SIGKILL (OOM killer, preemption), as DVC reports it
        (
            StageFailed(
                "train_teacher",
                255,
                "ERROR: failed to reproduce 'train_teacher': failed to run: dualrerank "
                "run train_teacher, exited with -9",
            ),
            True,
        ),
        (StageFailed("train_teacher", -9, ""), True),
        (StageFailed("train_teacher", 255, "failed to run: dualrerank run train_teacher, exited with 1"), False),
        (subprocess.CalledProcessError(1, ["dualrerank", "run", "train_teacher"]), False),
        (ValidationFailed(ValidationReport(success=False, n_rows=1, n_requests=1, n_checked=1)), False),
        (ConfigError("train_teacher.lr: unknown key"), False),
        (FileNotFoundError("data/processed/train.npz"), False),
        (ValueError("evaluate.gate.candidate_n_samples=16 is not one of evaluate.bon_sizes"), False),
    ],
)
def test_only_failures_that_can_pass_by_themselves_are_retried(exc, transient):
    assert is_transient(exc) is transient


def test_each_stage_is_one_dvc_process_and_its_status_is_read_from_dvc(tmp_path: Path):
    command = dvc_command("train_teacher", tmp_path)
    assert command[1:] == ["-m", "dvc", "repro", "--single-item", f"{tmp_path.resolve()}/dvc.yaml:train_teacher"]
    assert "--force" in dvc_command("generate", tmp_path, force=True)
    assert status_of("Stage 'evaluate' didn't change, skipping\n", "evaluate") == "up to date"
    assert status_of("Stage 'evaluate' is cached - skipping run, checking out outputs\n", "evaluate") == "restored"
    assert status_of("Running stage 'evaluate':\n> dualrerank run evaluate\n", "evaluate") == "ran"


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
    check = {"value": -0.01, "threshold": 0.0, "rule": ">=", "passed": False}
    release["checks"] = {"candidate_gain_vs_score_and_sort": check}
    (reports / "release.json").write_text(json.dumps(release))
    steps = [{"stage": "evaluate", "status": "ran", "seconds": 12.34}, {"stage": "validate", "status": "up to date"}]

    table = results_markdown(tmp_path, steps)

    assert "| evaluate | ran | 12.3 |" in table and "| validate | up to date | 0.0 |" in table
    assert "| upstream | 1.2500 | 1.0000 |" in table and "| nar_kd_bon4 | n/a | 1.5000 |" in table
    assert "Version 3 not promoted: quality gate failed." in table and "Champion: version 2." in table
    assert "| candidate_gain_vs_score_and_sort | -0.01 | >= 0.0 | False |" in table
    assert "| total | | 12.3 |" in table


def test_an_overlay_changes_params_for_the_run_only_and_a_bad_one_changes_nothing(tmp_path: Path):
    params = tmp_path / "params.yaml"
    original = (ROOT / "params.yaml").read_text()
    params.write_text(original)
    overlay = tmp_path / "params.streaming.yaml"
    overlay.write_text("finetune: {init: champion}\n")
    with overlaid_params(tmp_path, overlay):
        assert load_params(params).finetune.init == "champion"
    assert params.read_text() == original
    overlay.write_text("finetune: {init: yesterday}\n")
    with pytest.raises(ConfigError, match=r"finetune\.init"), overlaid_params(tmp_path, overlay):
        pass
    assert params.read_text() == original
    with pytest.raises(RuntimeError), overlaid_params(tmp_path, (ROOT / "params.streaming.yaml")):
        raise RuntimeError("a stage failed mid-run")
    assert params.read_text() == original


def test_a_stage_process_finds_this_environments_commands_without_make(monkeypatch):
    import sys

    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # as when a flow is started without the venv on PATH
    env = stage_environment()
    assert env["PATH"].split(os.pathsep)[0] == str(Path(sys.executable).parent)
    assert (Path(env["PATH"].split(os.pathsep)[0]) / "dualrerank").exists()
