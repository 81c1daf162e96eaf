"""Where MLflow runs go: a project's own sqlite store (relative to its root, wherever the process runs),
unless the user points MLFLOW_TRACKING_URI at a server."""

from __future__ import annotations

from pathlib import Path

import mlflow

from dualrerank.tracking import tracking_uri, use_experiment
from repo_params import repo_params

PARAMS = repo_params(common={"mlflow_tracking_uri": "sqlite:///mlflow.db"})


def test_a_relative_sqlite_store_belongs_to_the_project_root(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking_uri(PARAMS, tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_a_user_tracking_server_wins(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000")
    assert tracking_uri(PARAMS, tmp_path) == "http://mlflow.example:5000"


def test_one_project_store_does_not_leak_into_the_next(tmp_path: Path, monkeypatch):
    """mlflow.set_tracking_uri exports MLFLOW_TRACKING_URI; that must not redirect the next project."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    use_experiment(PARAMS, first)
    assert mlflow.get_tracking_uri() == f"sqlite:///{first.resolve()}/mlflow.db"
    assert tracking_uri(PARAMS, second) == f"sqlite:///{second.resolve()}/mlflow.db"
    experiment = mlflow.get_experiment_by_name(PARAMS.common.mlflow_experiment)
    assert experiment.artifact_location == (first / "mlruns").resolve().as_uri()


def test_a_stage_process_resolves_its_own_store_unless_the_user_named_one(tmp_path, monkeypatch):
    """A tracking URI this process set for another project must not leak into a stage's child process (it would
    log there); one the user exported (a real tracking server) must reach it."""
    from dualrerank import tracking

    params = repo_params()
    tracking.use_experiment(params, tmp_path)
    set_here = tracking.tracking_uri(params, tmp_path)
    assert "MLFLOW_TRACKING_URI" not in tracking.child_environment({"MLFLOW_TRACKING_URI": set_here, "A": "1"})
    user = {"MLFLOW_TRACKING_URI": "http://mlflow.internal:5000", "A": "1"}
    assert tracking.child_environment(user) == user
