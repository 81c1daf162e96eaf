"""Shared fixtures: a tiny, fast parameter profile in a temporary project root.

``tiny_root`` holds a ``params.yaml`` sized to run every stage in seconds on 2 cores. Tests run stages
with ``execute(stage, root=tiny_root, track=False)`` (no MLflow) unless they test tracking itself.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

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
    raw["finetune"].update(steps=6, batch_size=8, group_size=4, lr_grid=[1e-3], probe_requests=16, probe_every=2)
    raw["finetune"]["drift"].update(seeds=[0, 1])
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        raw[section][name] = value
    return raw


@pytest.fixture
def tiny_root(tmp_path: Path) -> Path:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params()))
    return tmp_path


@pytest.fixture(scope="session")
def make_tiny_params() -> Any:
    """``tiny_params`` itself, for tests that build their own roots or params (e.g. module-scoped fixtures)."""
    return tiny_params
