"""MLflow glue: one run per stage, named after the stage, with its parameters, git commit and the
``dvc.lock`` hash, so every figure can be traced back to the code and data that produced it."""

from __future__ import annotations

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


# URIs this process passed to mlflow.set_tracking_uri, which also exports them as MLFLOW_TRACKING_URI:
# that value is ours, not the user's choice of server, and must not follow us to another project.
_SET_HERE: set[str] = set()


def tracking_uri(params: Params, root: Path = Path(".")) -> str:
    """``MLFLOW_TRACKING_URI`` (a real server) if set, else the embedded default from params; a relative
    ``sqlite:///`` path is taken relative to the project ``root`` (not the current directory), so runs of
    a project started from elsewhere (a Prefect worker, ``--root``) land in that project's database."""
    env = os.environ.get("MLFLOW_TRACKING_URI")
    uri = env if env and env not in _SET_HERE else params.common.mlflow_tracking_uri
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` for a child process that runs a stage: without a tracking URI that this process set for a project
    of its own (MLflow keeps it in ``MLFLOW_TRACKING_URI``; the child resolves its project's store itself), while
    a user's ``MLFLOW_TRACKING_URI`` (a real server) passes through."""
    out = dict(env)
    if out.get("MLFLOW_TRACKING_URI") in _SET_HERE:
        del out["MLFLOW_TRACKING_URI"]
    return out


def use_experiment(params: Params, root: Path = Path(".")) -> None:
    """Point MLflow at the project's tracking store and experiment; a new experiment on a local store keeps
    its artifacts in ``root/mlruns`` (MLflow's default is the current directory)."""
    import mlflow

    uri = tracking_uri(params, root)
    _SET_HERE.add(uri)
    mlflow.set_tracking_uri(uri)
    name = params.common.mlflow_experiment
    if uri.startswith("sqlite:") and mlflow.get_experiment_by_name(name) is None:
        mlflow.create_experiment(name, artifact_location=(root / "mlruns").resolve().as_uri())
    mlflow.set_experiment(name)


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


def data_version(root: Path = Path(".")) -> str:
    """md5 DVC recorded for the validated data (``data/processed`` of stage ``validate`` in ``dvc.lock``):
    the version of the requests every figure was computed on; ``none`` outside a DVC pipeline."""
    import yaml

    lock = root / "dvc.lock"
    if not lock.exists():
        return "none"
    stage = (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).get("validate", {})
    return next((str(o["md5"]) for o in stage.get("outs", []) if o.get("path") == "data/processed"), "none")


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

    use_experiment(params, root)
    tags = {"stage": stage, "git_commit": git_commit(root), "dvc_lock_md5": dvc_lock_hash(root)}
    with mlflow.start_run(run_name=stage, tags=tags) as run:
        logged = flatten({s: getattr(params, s).model_dump() for s in sections})
        mlflow.log_params({k: str(v)[:500] for k, v in logged.items()})
        log.info("MLflow run %s (%s) at %s", run.info.run_id, stage, tracking_uri(params, root))
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
