"""Helpers shared by the training stages: loading splits, building tensors, fitting and saving models."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from dualrerank.config import Params
from dualrerank.config.training import NetConfig, OptimConfig
from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.data.targets import item_reward
from dualrerank.models.components import FeatureInput, SlateInputs
from dualrerank.models.io import save_model
from dualrerank.paths import Paths
from dualrerank.tracking import tracking_uri
from dualrerank.training.ranks import is_rank_zero
from dualrerank.training.seeding import seed_everything


def load_data(paths: Paths, splits: tuple[str, ...] = ("train", "val")) -> tuple[SlateMeta, dict[str, Slates]]:
    return SlateMeta.load(paths.meta), {s: Slates.load(paths.split(s)) for s in splits}


def supervised_tensors(
    slates: Slates, meta: SlateMeta, params: Params, paths: Paths, split: str
) -> dict[str, torch.Tensor]:
    """Inputs, logged feedback, per-item rewards and the split's target lists (stage ``build_targets``)."""
    with np.load(paths.target_file(split)) as z:
        if not np.array_equal(z["request_id"], slates.request_id):
            raise ValueError(f"{paths.target_file(split)} does not match the {split} split; rerun build_targets")
        target, weight = z["target"], z["weight"]
    rewards = item_reward(slates, meta, params.data.reward.item)
    return slate_tensors(slates, {"target": target, "weight": weight, "item_reward": rewards})


def target_judge_meta(paths: Paths) -> dict[str, Any]:
    """``{"reward_spec": ...}`` of the judge that chose the target lists, for a generator's file (``{}`` when
    no judge did): Best-of-N then judges that generator's lists with the same prior rules."""
    if not paths.target_judge.exists():
        return {}
    return {"reward_spec": json.loads(paths.target_judge.read_text())}


def fit_normalization(inputs: FeatureInput, train: dict[str, torch.Tensor]) -> None:
    """Set a network's feature normalisation from the training split (learned on train only)."""
    x = SlateInputs.from_batch(train)
    inputs.set_normalization(FeatureInput.raw_item_inputs(x), x.context, x.pad_mask)


def generator_hparams(meta: SlateMeta, net: NetConfig) -> dict[str, Any]:
    return {
        "n_item_features": len(meta.item_features),
        "n_context_features": len(meta.context_features),
        "d_model": net.d_model,
        "n_heads": net.n_heads,
        "enc_layers": net.enc_layers,
        "dec_layers": net.dec_layers,
        "page_len": meta.page_len,
        "dropout": net.dropout,
    }


def fingerprint(paths: Paths, stage: str, config: Any, inputs: tuple[Path, ...]) -> str:
    """Hash of a stage's config and input files (size + mtime): resume only an identical interrupted run."""
    h = hashlib.sha1(json.dumps(config.model_dump(), sort_keys=True, default=str).encode())
    for path in inputs:
        st = path.stat()
        h.update(f"{path}:{st.st_size}:{st.st_mtime_ns}".encode())
    return f"{stage}-{h.hexdigest()[:12]}"


def train(
    module: Any,
    train_t: dict[str, torch.Tensor],
    val_t: dict[str, torch.Tensor],
    optim: OptimConfig,
    params: Params,
    paths: Paths,
    run_key: str,
) -> Any:
    """Fit ``module`` with the one trainer factory; resumes an interrupted run with the same ``run_key``.
    Lightning is imported here, so the stages that only load and score models never pay its import."""
    from dualrerank.training.trainer import SlateDataModule, build_trainer, fit

    ckpt_dir = paths.checkpoints / run_key
    trainer = build_trainer(params.common, optim, ckpt_dir, tracking_uri(params, paths.root))
    return fit(trainer, module, SlateDataModule(train_t, val_t, optim.batch_size), ckpt_dir)


def save_and_log(path: Path, kind: str, hp: dict[str, Any], net: nn.Module, meta: dict[str, Any]) -> dict[str, float]:
    """Write the model file (rank 0 only, under data-parallel training), attach it to the stage's MLflow run,
    and return its size figures."""
    if not is_rank_zero():
        return {}
    save_model(path, kind, hp, net, meta)
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_artifact(str(path), artifact_path="model")
    n_params = sum(p.numel() for p in net.parameters())
    return {"n_parameters": float(n_params), "model_kib": os.path.getsize(path) / 1024}


def seed_module(seed: int) -> None:
    seed_everything(seed, workers=True)
