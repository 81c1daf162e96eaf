"""Scale-out on Lightning's DDP: ``common.devices: 2`` and ``common.strategy: ddp`` in params.yaml train the
teacher on two CPU processes (gloo), each on half of every epoch, with one model file and one MLflow run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
import yaml

from dualrerank.config import load_params
from dualrerank.models.io import load_model
from dualrerank.models.teacher import ARTeacher
from dualrerank.stages.runner import execute
from dualrerank.tracking import tracking_uri

pytestmark = [pytest.mark.slow, pytest.mark.integration]
SRC = Path(__file__).resolve().parents[2] / "src"


def test_the_teacher_trains_data_parallel_on_two_cpu_processes(tiny_root: Path):
    raw = yaml.safe_load((tiny_root / "params.yaml").read_text())
    raw["common"].update(accelerator="cpu", devices=2, strategy="ddp")
    raw["train_teacher"]["optim"].update(max_epochs=1, batch_size=32)
    raw["build_targets"]["kind"] = "reward_sorted"  # targets from the logs alone: no evaluator to train first
    (tiny_root / "params.yaml").write_text(yaml.safe_dump(raw))
    for stage in ("generate", "validate", "build_targets"):
        execute(stage, root=tiny_root, track=False)

    command = [sys.executable, "-m", "dualrerank.cli", "--root", str(tiny_root), "run", "train_teacher"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)

    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "distributed_backend=gloo" in output and "Starting with 2 processes" in output
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in output
    assert isinstance(load_model(tiny_root / "data/models/teacher.ckpt")[0], ARTeacher)

    params = load_params(tiny_root / "params.yaml")
    client = mlflow.MlflowClient(tracking_uri(params, tiny_root))
    experiment = client.get_experiment_by_name(params.common.mlflow_experiment)
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_name for r in runs] == ["train_teacher"]  # rank 1 opened no run of its own
    steps = client.get_metric_history(runs[0].info.run_id, "train/loss")
    n_train = raw["world"]["n_train_requests"]
    # Each rank takes every other request: ceil(160 / 2 / 32) = 3 optimizer steps in the epoch, not
    # ceil(160 / 32) = 5; the epoch's loss is logged at the index of its last step (0-based).
    assert [m.step for m in steps] == [-(-n_train // 2 // 32) - 1]
