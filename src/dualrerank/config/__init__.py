"""One source of parameters: ``params.yaml``, parsed into typed, frozen sections.

``load_params()`` reads the file and builds :class:`Params`; unknown sections or keys are errors that
name the offending key path. An *overlay* (``dualrerank run --overlay params.mslr.yaml``) lists only the
keys one run changes; it is merged over ``params.yaml`` and checked the same way, so the values still
live in one file and a profile cannot drift from them. DVC always runs on ``params.yaml`` alone.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from dualrerank.config.base import ConfigError, Section, build, replace
from dualrerank.config.benchmark import BenchmarkConfig
from dualrerank.config.common import CommonConfig
from dualrerank.config.data import DataConfig, ValidateConfig
from dualrerank.config.evaluation import EvaluateConfig
from dualrerank.config.finetune import ExploreConfig, FinetuneConfig
from dualrerank.config.live import LiveConfig
from dualrerank.config.release import ReleaseConfig
from dualrerank.config.serving import PackageConfig
from dualrerank.config.sweep import SweepConfig
from dualrerank.config.training import (
    BuildTargetsConfig,
    DistillConfig,
    EvaluatorConfig,
    NarConfig,
    PointwiseConfig,
    TeacherConfig,
)
from dualrerank.config.world import WorldConfig

__all__ = ["ConfigError", "Params", "load_params", "merge", "params_from_dict", "replace"]

DEFAULT_PARAMS = Path("params.yaml")


with warnings.catch_warnings():  # the ``validate`` section shadows pydantic's deprecated ``BaseModel.validate``
    warnings.filterwarnings("ignore", message='Field name "validate"', category=UserWarning)

    class Params(Section):
        """Every section of ``params.yaml``; all of them are required."""

        common: CommonConfig
        world: WorldConfig
        data: DataConfig
        validate: ValidateConfig  # type: ignore[assignment]  # shadows the deprecated BaseModel.validate
        build_targets: BuildTargetsConfig
        train_teacher: TeacherConfig
        train_nar: NarConfig
        distill: DistillConfig
        train_evaluator: EvaluatorConfig
        train_pointwise: PointwiseConfig
        explore: ExploreConfig
        finetune: FinetuneConfig
        evaluate: EvaluateConfig
        package: PackageConfig
        sweep: SweepConfig
        benchmark: BenchmarkConfig
        release: ReleaseConfig
        live: LiveConfig


def params_from_dict(raw: dict[str, Any]) -> Params:
    return build(Params, raw or {}, "params")


def merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overlay`` on top: mappings merge key by key, any other value (lists too) replaces."""
    out = dict(base)
    for key, value in overlay.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge(out[key], value) if both else value
    return out


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.exists():
        raise ConfigError(f"parameter file {path} not found (run from the repository root)")
    with open(path) as fh:
        raw = yaml.safe_load(fh) or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections, got {type(raw).__name__}")
    return raw


def load_params(path: Path | str = DEFAULT_PARAMS, overlay: Path | str | Sequence[Path | str] | None = None) -> Params:
    """Params from ``path``, with the keys of each ``overlay`` file (if any), in order, merged on top."""
    raw = _read_yaml(Path(path))
    overlays = [overlay] if isinstance(overlay, (str, Path)) else list(overlay or [])
    if not overlays:
        return params_from_dict(raw)
    for extra in overlays:
        raw = merge(raw, _read_yaml(Path(extra)))
    try:
        return params_from_dict(raw)
    except ConfigError as exc:
        raise ConfigError(f"{path} with overlay {', '.join(map(str, overlays))}: {exc}") from exc
