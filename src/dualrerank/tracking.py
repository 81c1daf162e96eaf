"""MLflow glue: one run per stage, named after the stage, with its parameters, git commit and the
``dvc.lock`` hash, so every figure can be traced back to the code and data that produced it."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import subprocess
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dualrerank.config import Params

log = logging.getLogger(__name__)


def tracking_uri(params: Params) -> str:
    """``MLFLOW_TRACKING_URI`` (a real server) if set, else the embedded default from params."""
    return os.environ.get("MLFLOW_TRACKING_URI") or params.common.mlflow_tracking_uri


def git_commit(root: Path = Path(".")) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def dvc_lock_hash(root: Path = Path(".")) -> str:
    lock = root / "dvc.lock"
    return hashlib.md5(lock.read_bytes()).hexdigest() if lock.exists() else "none"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``; lists and tuples are kept as one value."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


@contextmanager
def stage_run(stage: str, params: Params, sections: tuple[str, ...], root: Path = Path(".")) -> Iterator[Any]:
    """Start the MLflow run of ``stage``, logging the params ``sections`` it depends on."""
    import mlflow  # slow import: only when a stage actually runs

    mlflow.set_tracking_uri(tracking_uri(params))
    mlflow.set_experiment(params.common.mlflow_experiment)
    tags = {"stage": stage, "git_commit": git_commit(root), "dvc_lock_md5": dvc_lock_hash(root)}
    with mlflow.start_run(run_name=stage, tags=tags) as run:
        logged = flatten({s: dataclasses.asdict(getattr(params, s)) for s in sections})
        mlflow.log_params({k: str(v)[:500] for k, v in logged.items()})
        log.info("MLflow run %s (%s) at %s", run.info.run_id, stage, tracking_uri(params))
        yield run


@contextmanager
def nested_run(name: str) -> Iterator[None]:
    """A nested MLflow run inside the stage's run (none when the stage runs untracked)."""
    import mlflow

    if mlflow.active_run() is None:
        yield
        return
    with mlflow.start_run(run_name=name, nested=True):
        yield
