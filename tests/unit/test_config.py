"""params.yaml is the one source of parameters; typos and bad values fail loudly with the key path."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, get_origin

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from dualrerank.config import ConfigError, Params, load_params, merge, params_from_dict, replace

ROOT = Path(__file__).resolve().parents[2]
RAW = yaml.safe_load((ROOT / "params.yaml").read_text())


def with_changes(overlay: dict[str, Any]) -> Params:
    return params_from_dict(merge(RAW, overlay))


def test_repository_params_load_and_cover_every_section():
    params = load_params(ROOT / "params.yaml")
    assert set(RAW) == set(Params.model_fields), "params.yaml and Params must list the same sections"
    assert params.world.n_candidates == 50 and params.world.page_len == 10 and params.world.viewport == 4


def models(cls: type[BaseModel], where: str) -> list[tuple[str, type[BaseModel]]]:
    out = [(where, cls)]
    for name, field in cls.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out += models(field.annotation, f"{where}.{name}")
    return out


def test_no_field_has_a_default_so_params_yaml_is_the_only_source():
    with_default = [
        f"{where}.{name}"
        for where, cls in models(Params, "params")
        for name, field in cls.model_fields.items()
        if not field.is_required()
    ]
    assert with_default == []


def test_the_parsed_params_are_exactly_params_yaml():
    """Every key of params.yaml reaches the models unchanged (lists as tuples), and nothing else is there."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return list(value) if isinstance(value, tuple) else value

    assert plain(load_params(ROOT / "params.yaml").model_dump()) == RAW
    tuples = [
        f"{where}.{name}"
        for where, cls in models(Params, "params")
        for name, field in cls.model_fields.items()
        if get_origin(field.annotation) is tuple
    ]
    params = load_params(ROOT / "params.yaml")
    for path in tuples:
        value: Any = params
        for part in path.split(".")[1:]:
            value = getattr(value, part)
        assert isinstance(value, tuple), path


def test_unknown_key_is_rejected_with_its_path_and_the_valid_keys():
    with pytest.raises(ConfigError, match=r"world: unknown key\(s\) \['redundnacy'\]; valid keys are \[.*'redundancy'"):
        with_changes({"world": {"redundnacy": 1.0}})
    with pytest.raises(ConfigError, match=r"params: unknown key\(s\) \['wrold'\]"):
        with_changes({"wrold": {}})


def test_nested_unknown_key_names_the_full_path():
    with pytest.raises(ConfigError, match=r"train_teacher\.optim: unknown key\(s\) \['learning_rate'\]"):
        with_changes({"train_teacher": {"optim": {"learning_rate": 0.1}}})


def test_missing_key_and_section_are_errors():
    raw = copy.deepcopy(RAW)
    del raw["world"]["seed"]
    with pytest.raises(ConfigError, match=r"params\.world\.seed: missing required key"):
        params_from_dict(raw)
    with pytest.raises(ConfigError, match=r"params\.release: missing required key"):
        params_from_dict({k: v for k, v in RAW.items() if k != "release"})


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"world": {"page_len": "ten"}}, r"world\.page_len: expected an integer, got 'ten'"),
        ({"world": {"page_len": 10.0}}, r"world\.page_len: expected an integer"),
        ({"train_teacher": {"optim": {"lr": "fast"}}}, r"train_teacher\.optim\.lr: expected a number"),
        ({"train_teacher": {"optim": {"lr": True}}}, r"train_teacher\.optim\.lr: expected a number"),
        ({"common": {"progress": "yes"}}, r"common\.progress: expected true/false"),
        ({"common": {"progress": 1}}, r"common\.progress: expected true/false"),
        ({"data": {"svmlight": {"click": [0.1, "x"]}}}, r"data\.svmlight\.click\[1\]: expected a number"),
        ({"data": {"reward": {"item": {"click": "a"}}}}, r"data\.reward\.item\.click: expected a number"),
        ({"world": 3}, r"params\.world: expected a mapping"),
        ({"world": {"viewport": 3}}, "viewport must be a whole number of dual-column rows"),
        ({"world": {"page_len": 60}}, "page_len must be <= n_candidates"),
        ({"data": {"source": "parquet"}}, "data.path is required"),
        ({"data": {"source": "csv"}}, r"data\.source: 'csv' is not one of"),
        ({"build_targets": {"kind": "random"}}, r"build_targets\.kind: 'random' is not one of"),
        ({"sweep": {"stages": ["generate", "distill", "finetune", "evaluate"]}}, "explore must run before it"),
        ({"sweep": {"stages": ["generate", "finetune", "explore", "evaluate"]}}, "explore must run before it"),
        ({"explore": {"pages_per_request": 0}}, r"params\.explore: pages_per_request >= 1"),
        ({"train_teacher": {"net": {"d_model": 30}}}, r"train_teacher\.net: d_model must be divisible by n_heads"),
        ({"train_evaluator": {"heldout": {"structure": False}}}, r"heldout: groups .* needs structure: true"),
    ],
)
def test_bad_values_are_rejected_with_the_key_path(overlay, message):
    with pytest.raises(ConfigError, match=message):
        with_changes(overlay)


def test_objects_are_frozen_and_lists_become_tuples():
    params = with_changes({"world": {"redundancy": 0.0}})
    assert params.world.redundancy == 0.0 and params.world.context == RAW["world"]["context"]
    with pytest.raises(ValidationError, match="frozen"):
        params.world.redundancy = 1.0  # type: ignore[misc]
    assert isinstance(params.evaluate.bon_sizes, tuple) and isinstance(params.train_teacher.optim.lr, float)


def test_replace_checks_the_changed_section():
    world = load_params(ROOT / "params.yaml").world
    assert replace(world, seed=1).seed == 1 and world.seed == RAW["world"]["seed"]
    with pytest.raises(ConfigError, match="viewport must be a whole number"):
        replace(world, viewport=3)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['sede'\]"):
        replace(world, sede=1)
