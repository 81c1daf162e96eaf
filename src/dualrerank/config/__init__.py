"""One source of parameters: ``params.yaml``, parsed into typed, frozen sections.

``load_params()`` reads the file and builds :class:`Params`; unknown sections or keys are errors that
name the offending key path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dualrerank.config.base import ConfigError, build
from dualrerank.config.common import CommonConfig
from dualrerank.config.data import DataConfig, ValidateConfig
from dualrerank.config.evaluation import EvaluateConfig
from dualrerank.config.finetune import FinetuneConfig
from dualrerank.config.training import DistillConfig, EvaluatorConfig, NarConfig, PointwiseConfig, TeacherConfig
from dualrerank.config.world import WorldConfig

__all__ = ["ConfigError", "Params", "load_params", "params_from_dict"]

DEFAULT_PARAMS = Path("params.yaml")


@dataclass(frozen=True)
class Params:
    common: CommonConfig = field(default_factory=CommonConfig)
    world: WorldConfig = field(default_factory=WorldConfig)
    data: DataConfig = field(default_factory=DataConfig)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    train_teacher: TeacherConfig = field(default_factory=TeacherConfig)
    train_nar: NarConfig = field(default_factory=NarConfig)
    distill: DistillConfig = field(default_factory=DistillConfig)
    train_evaluator: EvaluatorConfig = field(default_factory=EvaluatorConfig)
    train_pointwise: PointwiseConfig = field(default_factory=PointwiseConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)


def params_from_dict(raw: dict[str, Any]) -> Params:
    return build(Params, raw or {}, "params")


def load_params(path: Path | str = DEFAULT_PARAMS) -> Params:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"parameter file {path} not found (run from the repository root)")
    with open(path) as fh:
        raw = yaml.safe_load(fh)
    return params_from_dict(raw)
