"""Self-describing model files: ``{"format", "kind", "hparams", "meta", "state_dict"}``.

Later stages and the service rebuild networks from these files, never from ``params.yaml``. Files hold
only tensors and plain containers, so they load with ``torch.load(..., weights_only=True)``: a model file
cannot execute code when opened.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from dualrerank.models.encoder import SetEncoder
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher

M = TypeVar("M", bound=nn.Module)
FORMAT = 1
KINDS = ("teacher", "student", "evaluator", "pointwise")


def build_model(kind: str, hp: dict[str, Any]) -> nn.Module:
    """Build an untrained network of ``kind`` from its hyper-parameters."""
    if kind in ("teacher", "student"):
        encoder = SetEncoder(
            hp["n_item_features"],
            hp["n_context_features"],
            hp["d_model"],
            hp["n_heads"],
            hp["enc_layers"],
            hp["dropout"],
        )
        args = (encoder, hp["d_model"], hp["n_heads"], hp["dec_layers"], hp["page_len"], hp["dropout"])
        if kind == "teacher":
            return ARTeacher(*args, identity_groups=hp.get("identity_groups"))
        return NARStudent(*args)
    if kind == "evaluator":
        return ListEvaluator(**hp)
    if kind == "pointwise":
        return PointwiseScorer(**hp)
    raise KeyError(f"unknown model kind {kind!r}; expected one of {KINDS}")


def build_teacher(hp: dict[str, Any]) -> ARTeacher:
    net = build_model("teacher", hp)
    assert isinstance(net, ARTeacher)
    return net


def build_student(hp: dict[str, Any]) -> NARStudent:
    net = build_model("student", hp)
    assert isinstance(net, NARStudent)
    return net


def build_evaluator(hp: dict[str, Any]) -> ListEvaluator:
    net = build_model("evaluator", hp)
    assert isinstance(net, ListEvaluator)
    return net


def build_pointwise(hp: dict[str, Any]) -> PointwiseScorer:
    net = build_model("pointwise", hp)
    assert isinstance(net, PointwiseScorer)
    return net


def save_model(path: Path, kind: str, hp: dict[str, Any], net: nn.Module, meta: dict[str, Any] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    torch.save({"format": FORMAT, "kind": kind, "hparams": hp, "meta": meta or {}, "state_dict": state}, path)


def load_as(path: Path, cls: type[M]) -> tuple[M, dict[str, Any]]:
    """``load_model`` that checks the network is a ``cls`` (clear error otherwise)."""
    net, record = load_model(path)
    if not isinstance(net, cls):
        raise TypeError(f"{path} holds a {record['kind']} model, expected a {cls.__name__}")
    return net, record


def load_model(path: Path, map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """``(network in eval mode, record)``; the record holds ``kind``, ``hparams`` and ``meta``."""
    record = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError(f"{path} is not a Dual-Rerank model file (format {FORMAT})")
    net = build_model(record["kind"], record["hparams"])
    net.load_state_dict(record["state_dict"])
    net.eval()
    return net, record
