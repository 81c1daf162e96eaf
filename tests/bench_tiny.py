"""A tiny project for the benchmark's tests: params sized to run every study in seconds on 2 cores."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
OPTIM = {"batch_size": 32, "max_epochs": 1, "patience": 1, "lr": 0.003}
NET = {"d_model": 16, "n_heads": 2, "enc_layers": 1, "dec_layers": 1}
# the production stages a benchmark reads from, in pipeline order
PRODUCTION = ("generate", "validate", "train_evaluator", "train_pointwise", "build_targets", "train_teacher")
PRODUCTION += ("distill", "explore", "finetune")


def bench_params() -> dict[str, Any]:
    """The repository's ``params.yaml`` shrunk to a tiny world, one epoch per model and tiny benchmark grids."""
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    raw["common"].update(progress=False, num_threads=1)
    raw["world"].update(
        n_train_requests=160, n_val_requests=40, n_test_requests=40, n_candidates=12, page_len=6,
        n_items=600, n_authors=60, n_users=100, n_queries=50, oracle_beam=8,
    )  # fmt: skip
    for section in ("train_teacher", "train_nar", "train_evaluator", "train_pointwise", "distill"):
        raw[section]["optim"].update(OPTIM)
    for section in ("train_teacher", "train_nar"):
        raw[section]["net"].update(NET)
    raw["distill"]["dec_layers"] = 1
    for role in ("main", "heldout"):
        raw["train_evaluator"][role].update(d_model=16, n_heads=2, n_layers=1)
    raw["train_pointwise"]["d_model"] = 16
    raw["evaluate"].update(diagnostics_requests=20, ecg_requests=10, ecg_samples=8, correlation_pages=4)
    raw["evaluate"]["gate"]["candidate_n_samples"] = 4
    raw["finetune"].update(window=48, batch_size=8, group_size=4, probe_requests=16, probe_every=2)
    for key in ("steps", "lr_grid", "drift", "test_seeds", "selection"):  # keys of the old monolithic stage
        raw["finetune"].pop(key, None)
    raw["benchmark"].update(lr_grid=[1e-3, 3e-3], seeds=[1], probe_requests=16)
    raw["benchmark"]["drift"]["seeds"] = [0, 1]
    raw["benchmark"]["scaling"].update(factors=[1, 2], max_epochs=1)
    return raw


def bench_project(dest: Path) -> Path:
    """``dest`` as a project: tiny ``params.yaml``, the benchmark's ``dvc.yaml``, ``dvc init --no-scm``."""
    from dvc.repo import Repo

    (dest / "benchmarks").mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "benchmarks" / "dvc.yaml", dest / "benchmarks" / "dvc.yaml")
    (dest / "params.yaml").write_text(yaml.safe_dump(bench_params()))
    Repo.init(str(dest), no_scm=True).close()
    return dest
