"""The Prefect flow on a tiny DVC project: it runs every stage in order and records each in ``dvc.lock`` so
that ``dvc repro`` then has nothing to do; reruns do only what changed; a validation failure fails the flow
with its report attached and leaves models, reports and the champion alias alone."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from dualrerank import registry
from dualrerank.config import load_params
from dualrerank.stages import STAGES

pytestmark = pytest.mark.integration
SRC = Path(__file__).resolve().parents[2] / "src"


def statuses(steps: list[dict]) -> dict[str, str]:
    return {s["stage"]: s["status"] for s in steps}


def edit_params(root: Path, **changes: object) -> None:
    raw = yaml.safe_load((root / "params.yaml").read_text())
    for key, value in changes.items():
        *sections, name = key.split(".")
        node = raw
        for section in sections:
            node = node[section]
        node[name] = value
    (root / "params.yaml").write_text(yaml.safe_dump(raw))


def dvc(root: Path, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_flow_runs_every_stage_in_order_and_records_them_in_dvc(trained_project, artifacts):
    root, state = trained_project
    assert state.is_completed(), state.message
    steps = state.result()
    assert [s["stage"] for s in steps] == list(STAGES)
    assert set(statuses(steps).values()) == {"ran"}
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert list(lock["stages"]) == list(STAGES)

    out = dvc(root, "repro")  # the other runner agrees: nothing to do
    assert "Data and pipelines are up to date." in out and "Running stage" not in out

    results = artifacts(state)["dual-rerank-results"]
    assert "| train_teacher | ran |" in results and "| nar_ldro_bon4 |" in results
    assert "## Release" in results and "not promoted" in results  # this evaluate writes no quality gate yet


def test_reruns_do_only_what_changed(project_copy, flow_module):
    steps = flow_module.pipeline(root=str(project_copy))
    assert set(statuses(steps).values()) == {"up to date"}

    refreshed = statuses(flow_module.pipeline(root=str(project_copy), refresh_data=True))
    assert refreshed.pop("generate") == "ran"  # re-ingested, byte-identical: nothing downstream reruns
    assert set(refreshed.values()) == {"up to date"}

    edit_params(project_copy, **{"finetune.kl_coef": 0.05})  # one finetune param: finetune and its dependants
    changed = statuses(flow_module.pipeline(root=str(project_copy)))
    assert [s for s, status in changed.items() if status == "ran"] == ["finetune", "evaluate", "release", "package"]
    assert "Running stage" not in dvc(project_copy, "repro")


def fingerprint(root: Path) -> dict[str, str]:
    files = [*sorted((root / "data/models").glob("*.ckpt")), *sorted((root / "data/processed").iterdir())]
    files += [root / "data/reports/metrics.json", root / "data/reports/release.json"]
    return {str(f.relative_to(root)): hashlib.md5(f.read_bytes()).hexdigest() for f in files}


def test_a_validation_failure_fails_the_flow_with_its_report_and_changes_nothing(
    project_copy, flow_module, artifacts, tmp_path
):
    params = load_params(project_copy / "params.yaml")
    registry.promote(params, "1", project_copy)  # a champion the failed run must leave alone
    before = fingerprint(project_copy)
    logs = pd.read_parquet(project_copy / "data/raw/logs.parquet")
    shown = logs.index[logs["logged_position"].notna()][:7]
    logs.loc[shown, "watch_time"] = -1.0  # upstream delivers corrupted logs
    logs.to_parquet(tmp_path / "incoming.parquet", index=False)
    edit_params(project_copy, **{"data.source": "parquet", "data.path": str(tmp_path / "incoming.parquet")})

    state = flow_module.pipeline(root=str(project_copy), return_state=True)

    assert state.is_failed()
    report = artifacts(state)["validate-report"]
    assert report.startswith("# Data validation: FAILED") and "`watch_time`" in report
    assert json.loads((project_copy / "data/reports/validation.json").read_text())["success"] is False
    assert fingerprint(project_copy) == before
    assert str(registry.champion(params, project_copy).version) == "1"
    assert "dual-rerank-results" not in artifacts(state)


HOLD_DVC_LOCK = """
import sys
from dvc.repo import Repo
repo = Repo(sys.argv[1])
repo.lock.lock()
print("locked", flush=True)
sys.stdin.read()
repo.lock.unlock()
"""


def task_runs(name: str, flow_run_id=None) -> list:
    """Task runs named ``name`` (of one flow run, if given), read from the Prefect API."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter, TaskRunFilterName

    runs = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])) if flow_run_id else None
    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            flow_run_filter=runs, task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=[name]))
        )


def test_a_transient_failure_is_retried(project_copy, flow_module):
    """Another DVC command holds the repository: the stage fails, waits, and succeeds on its retry."""
    command = [sys.executable, "-c", HOLD_DVC_LOCK, str(project_copy)]
    holder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    outcome: dict = {}
    run = threading.Thread(
        target=lambda: outcome.update(state=flow_module.pipeline(root=str(project_copy), return_state=True))
    )
    try:
        run.start()
        deadline = time.monotonic() + 300
        while not any(r.state and r.state.name == "AwaitingRetry" for r in task_runs("generate")):
            assert time.monotonic() < deadline, "the generate task never waited for a retry"
            time.sleep(0.5)
    finally:
        holder.stdin.close()  # the other command finishes: the lock is free for the retry
        holder.wait()
    run.join(timeout=600)

    state = outcome["state"]
    assert state.is_completed()
    assert [r.run_count for r in task_runs("generate", state.state_details.flow_run_id)] == [2]
    assert set(statuses(state.result()).values()) == {"up to date"}
