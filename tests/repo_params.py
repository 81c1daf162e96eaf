"""The repository's ``params.yaml``: the config models have no defaults, so tests start from this file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dualrerank.config import Params, load_params, merge, params_from_dict

PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"


def repo_raw() -> dict[str, Any]:
    """``params.yaml`` as plain mappings."""
    return yaml.safe_load(PARAMS_FILE.read_text())


def repo_params(**sections: dict[str, Any]) -> Params:
    """``params.yaml`` parsed, with ``sections`` (nested mappings of the keys to change) merged on top."""
    return params_from_dict(merge(repo_raw(), sections)) if sections else load_params(PARAMS_FILE)
