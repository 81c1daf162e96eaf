"""Pipeline steps. One module per step, each with ``run(params, paths)`` and ``SECTIONS`` (the params
sections it reads). ``STAGES`` is the one ordered list of steps; ``dvc.yaml`` and the Prefect flow
must agree with it (a test checks both)."""

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
    "train_nar",
    "distill",
    "explore",
    "finetune",
    "evaluate",
    "release",
    "package",
)


def stage_module(name: str) -> ModuleType:
    if name not in STAGES:
        raise KeyError(f"unknown stage {name!r}; stages are {list(STAGES)}")
    return importlib.import_module(f"dualrerank.stages.{name}")
