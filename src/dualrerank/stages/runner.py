"""Run one pipeline step: load params, seed, open its MLflow run, call ``run``, log its figures."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from dualrerank.config import Params, load_params
from dualrerank.paths import Paths
from dualrerank.stages import stage_module
from dualrerank.tracking import stage_run
from dualrerank.training import seeding
from dualrerank.training.ranks import is_rank_zero


def seed_everything(seed: int, num_threads: int) -> None:
    import torch

    seeding.seed_everything(seed, workers=True)
    torch.set_num_threads(num_threads)


def execute(stage: str, params: Params | None = None, root: Path = Path("."), track: bool = True) -> dict[str, Any]:
    """Run ``stage`` with ``params`` (default: ``params.yaml`` under ``root``); returns its summary."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = load_params(root / "params.yaml") if params is None else params
    module = stage_module(stage)
    seed_everything(params.common.seed, params.common.num_threads)
    paths = Paths(root)
    t0 = time.perf_counter()
    if not track or not is_rank_zero():  # data-parallel training: one MLflow run, opened by rank 0
        return dict(module.run(params, paths))
    with stage_run(stage, params, ("common", *module.SECTIONS), root):
        import mlflow

        result = dict(module.run(params, paths))
        seconds = time.perf_counter() - t0
        result.setdefault("seconds", seconds)
        mlflow.log_metrics(
            {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        )
    print(f"{stage}: done in {seconds:.1f} s", flush=True)
    return result
