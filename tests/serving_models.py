"""Tiny untrained networks written as real model files, and a project root packaged by the real stage.

Service tests need a model set quickly; behaviour (shapes, validation, batching, determinism) does not
depend on training, so the networks are seeded random ones of the same classes the pipeline trains.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from dualrerank.models.io import build_evaluator, build_student, build_teacher, save_model
from dualrerank.stages.runner import execute

F, FC, K = 5, 3, 4  # item features, context features, page length
GEN_HP = dict(n_item_features=F, n_context_features=FC, d_model=16, n_heads=2, enc_layers=1, dec_layers=1, page_len=K)
EVAL_HP = dict(
    n_item_features=F,
    n_context_features=FC,
    item_kinds=["binary", "continuous"],
    page_kinds=["binary"],
    item_scales=[1.0, 20.0],
    d_model=16,
    n_heads=2,
    n_layers=1,
    page_len=K,
)
EVAL_META = {"item_weights": [0.0, 1 / 60], "page_weights": [2.0]}


def write_tiny_models(models: Path, seed: int = 0) -> None:
    """``student.ckpt``, ``teacher.ckpt`` and the judge ``evaluator_explore.ckpt`` under ``models``."""
    torch.manual_seed(seed)
    hp = {**GEN_HP, "dropout": 0.0}
    save_model(models / "student.ckpt", "student", hp, build_student(hp))
    save_model(models / "teacher.ckpt", "teacher", hp, build_teacher(hp))
    save_model(models / "evaluator_explore.ckpt", "evaluator", EVAL_HP, build_evaluator(EVAL_HP), EVAL_META)


def package_tiny(root: Path, params: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Write tiny models under ``root/data/models`` and run the ``package`` stage on them (no registry): its summary."""
    root.mkdir(parents=True, exist_ok=True)
    params = {**params, "package": {**params["package"], "source": "local"}}
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    write_tiny_models(root / "data" / "models", seed)
    return execute("package", root=root, track=False)


def request_body(n: int = 6, seed: int = 0, **overrides: Any) -> dict[str, Any]:
    """A valid JSON request for the tiny models (``n`` candidates)."""
    g = torch.Generator().manual_seed(seed)
    body: dict[str, Any] = {
        "request_id": f"r{seed}",
        "context": torch.randn(FC, generator=g).tolist(),
        "candidates": [
            {"item_id": f"item-{seed}-{i}", "features": torch.randn(F, generator=g).tolist()} for i in range(n)
        ],
    }
    body.update(overrides)
    return body
