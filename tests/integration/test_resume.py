"""A training stage killed mid-run (SIGKILL, as by the OOM killer or a preempted machine) resumes from its
last checkpoint on rerun and ends with exactly the weights of a run that was never interrupted."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from dualrerank.models.io import load_model
from dualrerank.stages.runner import execute

pytestmark = pytest.mark.integration
SRC = Path(__file__).resolve().parents[2] / "src"


def train_teacher(root: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "dualrerank.cli", "--root", str(root), "run", "train_teacher", "--no-mlflow"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def weights(root: Path) -> dict[str, torch.Tensor]:
    return load_model(root / "data/models/teacher.ckpt")[0].state_dict()


def test_a_killed_training_run_resumes_from_its_checkpoint_and_matches_an_uninterrupted_run(tiny_root: Path):
    raw = yaml.safe_load((tiny_root / "params.yaml").read_text())
    raw["train_teacher"]["optim"].update(max_epochs=10, patience=10)  # long enough to be killed half-way
    raw["build_targets"]["kind"] = "reward_sorted"  # targets from the logs alone: no evaluator to train first
    (tiny_root / "params.yaml").write_text(yaml.safe_dump(raw))
    for stage in ("generate", "validate", "build_targets"):
        execute(stage, root=tiny_root, track=False)

    reference = train_teacher(tiny_root)
    assert reference.wait() == 0, reference.stdout.read()
    uninterrupted = weights(tiny_root)

    run = train_teacher(tiny_root)
    checkpoints = tiny_root / "data/checkpoints"
    while not any(checkpoints.glob("*/last.ckpt")) and run.poll() is None:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)  # right after the first checkpoint: the run is mid-way
    assert run.wait() == -signal.SIGKILL
    last = next(checkpoints.glob("*/last.ckpt"))
    killed_at = torch.load(last, weights_only=True)["global_step"]

    rerun = train_teacher(tiny_root)
    output = rerun.communicate()[0]

    assert rerun.returncode == 0, output
    resumed = re.search(r"resuming from \S+last\.ckpt \(epoch (\d+), global step (\d+)\)", output)
    assert resumed is not None, output
    assert int(resumed.group(2)) == killed_at > 0
    assert int(resumed.group(1)) < raw["train_teacher"]["optim"]["max_epochs"] - 1  # epochs were left to train
    final = weights(tiny_root)
    assert all(torch.equal(final[k], uninterrupted[k]) for k in uninterrupted)
    assert not checkpoints.exists() or not any(checkpoints.iterdir())  # a finished run cleans up after itself
