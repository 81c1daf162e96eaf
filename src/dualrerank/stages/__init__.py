"""Pipeline steps. One module per step, each with ``run(params, paths)`` and ``SECTIONS`` (the params
sections it reads). ``STAGES`` is the one ordered list of the production cycle's steps; ``dvc.yaml`` and the
Prefect flow must agree with it (a test checks both). ``BENCHMARK_STAGES`` are steps only the benchmark runs
(``benchmarks/dvc.yaml``), with the same ``dualrerank run STAGE`` entry point."""

from __future__ import annotations

import importlib
from types import ModuleType

STAGES: tuple[str, ...] = (
    "generate",
    "validate",
    "train_evaluator",
    "train_pointwise",
    "build_targets",
    "train_teacher",
    "distill",
    "explore",
    "finetune",
    "evaluate",
    "release",
    "package",
)


BENCHMARK_STAGES: tuple[str, ...] = ("train_nar",)  # the NAR student without distillation (a baseline)


def stage_module(name: str) -> ModuleType:
    if name not in STAGES + BENCHMARK_STAGES:
        raise KeyError(f"unknown stage {name!r}; stages are {list(STAGES + BENCHMARK_STAGES)}")
    return importlib.import_module(f"dualrerank.stages.{name}")
