"""Shared fixtures: a tiny, fast parameter profile in a temporary project root.

``tiny_root`` holds a ``params.yaml`` sized to run every stage in seconds on 2 cores. Tests run stages
with ``execute(stage, root=tiny_root, track=False)`` (no MLflow) unless they test tracking itself.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
# BentoML's model and Bento stores: a throwaway one per test session, never the user's ~/bentoml
os.environ["BENTOML_HOME"] = tempfile.mkdtemp(prefix="dualrerank-bentoml-")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
atexit.register(shutil.rmtree, os.environ["BENTOML_HOME"], ignore_errors=True)
os.environ.setdefault("DVC_NO_ANALYTICS", "1")
# Prefect: a private home (results, profiles) for the test session, no telemetry, and patience with a busy
# machine when a temporary API server starts.
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="dualrerank-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.pop("MLFLOW_TRACKING_URI", None)  # tests use each project's own sqlite store, never a real server

TINY_OPTIM = {"batch_size": 32, "max_epochs": 2, "patience": 2, "lr": 0.003}


def tiny_params(**overrides: Any) -> dict[str, Any]:
    """The repository's params.yaml shrunk to a tiny world and one or two epochs per model."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["common"].update(progress=False, num_threads=1)
    raw["world"].update(
        n_train_requests=160,
        n_val_requests=40,
        n_test_requests=40,
        n_candidates=12,
        page_len=6,
        n_items=600,
        n_authors=60,
        n_users=100,
        n_queries=50,
        oracle_beam=8,
    )
    for section in ("train_teacher", "train_nar", "train_evaluator", "train_pointwise"):
        raw[section]["optim"].update(TINY_OPTIM)
    raw["distill"]["optim"].update(TINY_OPTIM)
    for section in ("train_teacher", "train_nar"):
        raw[section]["net"].update(d_model=16, n_heads=2, enc_layers=1, dec_layers=1)
    raw["distill"]["dec_layers"] = 1
    raw["train_evaluator"]["main"].update(d_model=16, n_heads=2, n_layers=1)
    raw["train_evaluator"]["heldout"].update(d_model=16, n_heads=2, n_layers=1)
    raw["train_pointwise"]["d_model"] = 16
    raw["evaluate"].update(
        bon_sizes=[1, 4],
        latency_requests=10,
        serving_batch=4,
        serving_batch_calls=3,
        diagnostics_requests=20,
        ecg_requests=10,
        ecg_samples=8,
        correlation_pages=4,
    )
    raw["evaluate"]["gate"]["candidate_n_samples"] = 4  # the released Best-of-N size: one evaluate scores
    # tiny models need not pass the quality gate, so a tiny project may have no champion: package its local files
    raw["package"].update(build=False, max_n_samples=8, max_candidates=30, source="local")
    raw["package"]["bench"].update(requests=20, warmup=2, n_candidates=12, distinct_requests=4, malformed=40)
    raw["finetune"].update(window=48, batch_size=8, group_size=4, probe_requests=16, probe_every=2)
    raw["benchmark"].update(lr_grid=[1e-3], seeds=[1], probe_requests=16)
    raw["benchmark"]["drift"].update(seeds=[0, 1])
    raw["benchmark"]["scaling"].update(factors=[1, 2])
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        raw[section][name] = value
    return raw


@pytest.fixture(autouse=True)
def tracking_uri_stays_in_its_test():
    """A stage run in this process points MLflow at its project's store, and MLflow exports that as
    ``MLFLOW_TRACKING_URI``. Left set, a later test's child processes (which copy this environment) would take
    it for a user's tracking server and log into another test's database: unset it after every test."""
    before = os.environ.get("MLFLOW_TRACKING_URI")
    yield
    if before is None:
        os.environ.pop("MLFLOW_TRACKING_URI", None)
    else:
        os.environ["MLFLOW_TRACKING_URI"] = before


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    return tmp_path


def make_project(dest: Path, **overrides: Any) -> Path:
    """A tiny DVC project at ``dest``: this repository's ``dvc.yaml``, the package source its stages depend
    on, a tiny ``params.yaml`` and ``dvc init --no-scm``; the flow and ``dvc repro`` run in it as in the repo."""
    from dvc.repo import Repo

    code = ROOT / "src" / "dualrerank"
    shutil.copytree(code, dest / "src" / "dualrerank", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "dvc.yaml", dest / "dvc.yaml")
    shutil.copy(ROOT / "bentofile.yaml", dest / "bentofile.yaml")  # a dependency of the package stage
    raw = tiny_params(**overrides)
    # The pipeline itself never promotes a tiny model (an unreachable gate), so the first release is always
    # registered but not promoted; tests promote by rewriting the gate in metrics.json.
    if "evaluate.gate" not in overrides:
        raw["evaluate"]["gate"]["min_gain_vs_baseline"] = 1.0e9
    (dest / "params.yaml").write_text(yaml.safe_dump(raw))
    Repo.init(str(dest), no_scm=True).close()
    return dest


def load_flow_module() -> Any:
    """``flows/pipeline.py`` (not a package: Prefect deployments load it by path, and so do the tests)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("dualrerank_flow_pipeline", ROOT / "flows" / "pipeline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def project_factory() -> Any:
    """``make_project(dest, **params_overrides) -> dest``: a tiny DVC project (see :func:`make_project`)."""
    return make_project


@pytest.fixture(scope="session")
def flow_module() -> Any:
    return load_flow_module()


@pytest.fixture(scope="session")
def make_tiny_params() -> Any:
    """``tiny_params`` itself, for tests that build their own roots or params (e.g. module-scoped fixtures)."""
    return tiny_params
