"""The environment of a child process (``bentoml serve``, ``bentoml build``, a stage process) that must import
this copy of ``dualrerank``: its source folder goes first on ``PYTHONPATH``, so a worktree or a test run never
runs another copy of the package."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import dualrerank


def code_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child process that must import this ``dualrerank``."""
    code = str(Path(dualrerank.__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [code, os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "BENTOML_DO_NOT_TRACK": "True", **(extra or {})}
