"""Typed, frozen configuration models built from plain mappings (``params.yaml`` sections).

Every section is a :class:`Section`: a frozen pydantic model that forbids unknown keys and checks types
strictly (no ``"3"`` for an integer, no ``1`` for ``true``). No field has a default: ``params.yaml`` is the
only place values live, so a model can only be built from a complete section. :func:`build` turns a mapping
into a model and any validation failure into a :class:`ConfigError` whose message names the offending key
path (``train_teacher.optim.lr: expected a number, got 'fast'``), so a typo in ``params.yaml`` fails at load
time instead of being silently ignored. :func:`replace` is the checked way to change a few fields of a model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, get_origin

from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A parameter is missing, unknown, or of the wrong type."""


class Section(BaseModel):
    """Base of every parameter model: frozen, strict, unknown keys are errors; lists become tuples."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="before")
    @classmethod
    def _lists_to_tuples(cls, data: Any) -> Any:
        """YAML and JSON have lists only: a list given for a tuple field becomes a tuple (then checked)."""
        if not isinstance(data, Mapping):
            return data
        out = dict(data)
        for name, value in out.items():
            field = cls.model_fields.get(name)
            if field is not None and isinstance(value, list) and get_origin(field.annotation) is tuple:
                out[name] = tuple(value)
        return out


def check(condition: bool, message: str) -> None:
    """Raise ``ValueError(message)`` unless ``condition``; used in the models' ``model_validator`` checks."""
    if not condition:
        raise ValueError(message)


def build(cls: type[M], data: Any, where: str) -> M:
    """Model ``cls`` from ``data``; ``where`` is the key path used in error messages."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__} ({data!r})")
    try:
        return cls.model_validate(dict(data))
    except ValidationError as exc:
        raise ConfigError(describe(exc, cls, where)) from exc


def replace(config: M, where: str | None = None, **changes: Any) -> M:
    """``config`` with ``changes`` applied, checked like a fresh section (``model_copy`` would not check)."""
    return build(type(config), {**dict(config), **changes}, where or type(config).__name__)


def describe(exc: ValidationError, cls: type[BaseModel], where: str) -> str:
    """One readable line per problem of ``exc``, each starting with the offending key path."""
    lines: list[str] = []
    unknown: dict[tuple[Any, ...], list[str]] = {}
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            unknown.setdefault(loc[:-1], []).append(str(loc[-1]))
            continue
        lines.append(f"{_path(where, loc)}: {_message(err)}")
    for parent, names in unknown.items():
        valid = _valid_keys(cls, parent)
        hint = f"; valid keys are {valid}" if valid is not None else ""
        lines.insert(0, f"{_path(where, parent)}: unknown key(s) {sorted(names)}{hint}")
    return "\n".join(lines) if lines else f"{where}: {exc}"


def _path(where: str, loc: tuple[Any, ...]) -> str:
    out = where
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _message(err: Any) -> str:
    kind, value = err["type"], err.get("input")
    if kind == "missing":
        return "missing required key"
    if kind == "value_error":  # a model's own check (model_validator)
        return str(err.get("ctx", {}).get("error", err["msg"]))
    if kind == "literal_error":
        return f"{value!r} is not one of {err.get('ctx', {}).get('expected', '')}"
    if kind == "frozen_instance":
        return "parameters are frozen"
    expected = {
        "int_type": "an integer",
        "float_type": "a number",
        "bool_type": "true/false",
        "string_type": "a string",
        "tuple_type": "a list",
        "dict_type": "a mapping",
        "model_type": "a mapping",
    }.get(kind)
    if expected is not None:
        return f"expected {expected}, got {value!r}"
    return f"{err['msg']} (got {value!r})"


def _valid_keys(cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The field names of the model at ``loc`` under ``cls`` (None where ``loc`` is not a model)."""
    model: Any = cls
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return None
        model = field.annotation
    return sorted(model.model_fields)
