"""params.yaml is the one source of parameters; typos and bad values fail loudly with the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dualrerank.config import ConfigError, Params, load_params, params_from_dict

ROOT = Path(__file__).resolve().parents[2]


def test_repository_params_load_and_cover_every_section():
    params = load_params(ROOT / "params.yaml")
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert set(raw) == set(Params.__dataclass_fields__), "params.yaml and Params must list the same sections"
    assert params.world.n_candidates == 50 and params.world.page_len == 10 and params.world.viewport == 4


def test_unknown_key_is_rejected_with_its_path():
    with pytest.raises(ConfigError, match=r"world: unknown key\(s\) \['redundnacy'\]"):
        params_from_dict({"world": {"redundnacy": 1.0}})


def test_nested_unknown_key_names_the_full_path():
    with pytest.raises(ConfigError, match=r"train_teacher.optim: unknown key"):
        params_from_dict({"train_teacher": {"optim": {"learning_rate": 0.1}}})


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"world": {"page_len": "ten"}}, "world.page_len: expected an integer"),
        ({"world": {"viewport": 3}}, "viewport must be a whole number of dual-column rows"),
        ({"world": {"page_len": 60}}, "page_len must be <= n_candidates"),
        ({"data": {"source": "parquet"}}, "data.path is required"),
        ({"data": {"source": "csv"}}, "is not one of"),
        ({"build_targets": {"kind": "random"}}, "is not one of"),
        ({"common": {"progress": "yes"}}, "expected true/false"),
        ({"sweep": {"stages": ["generate", "distill", "finetune", "evaluate"]}}, "explore must run before it"),
        ({"sweep": {"stages": ["generate", "finetune", "explore", "evaluate"]}}, "explore must run before it"),
        ({"explore": {"pages_per_request": 0}}, "pages_per_request >= 1"),
    ],
)
def test_bad_values_are_rejected(raw, message):
    with pytest.raises(ConfigError, match=message):
        params_from_dict(raw)


def test_defaults_fill_missing_keys_and_objects_are_frozen():
    params = params_from_dict({"world": {"redundancy": 0.0}})
    assert params.world.redundancy == 0.0 and params.world.context == 0.3
    with pytest.raises(AttributeError):
        params.world.redundancy = 1.0  # type: ignore[misc]
