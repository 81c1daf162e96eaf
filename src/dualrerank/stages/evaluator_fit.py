"""Fitting the list-wise evaluators (shared by ``train_evaluator`` and ``explore``, which refits them with the
on-policy round's logs): their hyper-parameters from the logs, the split of the training logs between the
main and the held-out evaluator, and one fit that writes a self-describing model file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dualrerank.config import Params, replace
from dualrerank.config.data import RuleConfig
from dualrerank.config.training import EvaluatorNetConfig
from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.models.evaluator import STRUCTURE_GAIN, ListEvaluator
from dualrerank.models.io import build_evaluator, load_as
from dualrerank.paths import Paths
from dualrerank.rewards import identity_groups
from dualrerank.stages.common import fingerprint, fit_normalization, save_and_log, seed_module, train
from dualrerank.training.modules import EvaluatorLitModule


def target_kinds(slates: Slates) -> tuple[list[str], list[float], list[str]]:
    """Binary or continuous per item feedback (with a scale: mean shown value) and per page feedback."""
    shown = slates.shown
    item_kinds, scales = [], []
    for l in range(slates.feedback.shape[-1]):
        values = slates.feedback[..., l][shown]
        binary = bool(np.isin(values, (0.0, 1.0)).all())
        item_kinds.append("binary" if binary else "continuous")
        scales.append(1.0 if binary else float(max(np.abs(values).mean(), 1e-6)))
    page_kinds = []
    for p in range(slates.page_feedback.shape[-1]):
        v = slates.page_feedback[:, p]
        page_kinds.append("binary" if np.isin(v[~np.isnan(v)], (0.0, 1.0)).all() else "continuous")
    return item_kinds, scales, page_kinds


def evaluator_hparams(
    meta: SlateMeta, net: EvaluatorNetConfig, train: Slates, rules: RuleConfig, viewport: int
) -> dict[str, Any]:
    """The evaluator's hyper-parameters; its pair terms match identities on the columns that ``rules`` names, and
    its page-structure terms start from screens of ``viewport`` slots."""
    item_kinds, scales, page_kinds = target_kinds(train)
    groups = identity_groups(meta.item_features, rules) if net.pairwise or net.structure else []
    group_columns = [i for i, n in enumerate(meta.item_features) if n.startswith(net.group_prefixes)]
    return {
        "n_item_features": len(meta.item_features),
        "n_context_features": len(meta.context_features),
        "item_kinds": item_kinds,
        "page_kinds": page_kinds,
        "item_scales": scales,
        "d_model": net.d_model,
        "n_heads": net.n_heads,
        "n_layers": net.n_layers,
        "page_len": meta.page_len,
        "arch": net.arch,
        "residual": net.residual,
        "pairwise": net.pairwise,
        "identity_groups": groups,
        "structure": net.structure,
        "viewport": viewport,
        "structure_gain": STRUCTURE_GAIN,
        "group_columns": group_columns,
        "n_groups": net.groups if group_columns else 0,
        "dropout": net.dropout,
    }


GROUP_FIT_ITEMS = 50_000  # training candidates the item groups are clustered on


def candidate_items(tensors: dict, limit: int, seed: int) -> torch.Tensor:
    """``[M, F]`` raw features of at most ``limit`` training candidates (a seeded sample; padding excluded)."""
    items = tensors["item_features"][~tensors["pad_mask"]]
    if len(items) > limit:
        items = items[torch.randperm(len(items), generator=torch.Generator().manual_seed(seed))[:limit]]
    return items


def halves(n: int, main_share: float) -> np.ndarray:
    """``[n]`` True on the main evaluator's training requests: disjoint from the held-out evaluator's, interleaved
    in time so both see the whole period."""
    idx = np.arange(n)
    return np.floor((idx + 1) * main_share) > np.floor(idx * main_share)


def fit_evaluator(
    params: Params,
    paths: Paths,
    meta: SlateMeta,
    role: str,
    train_logs: Slates,
    val_t: dict,
    out: str,
    source: tuple[Any, tuple[Path, ...]] = ((), ()),
    warm_start: Path | None = None,
    max_epochs: int | None = None,
    grouped: dict | None = None,
    within_weight: float = 0.0,
    dest: Path | None = None,
) -> dict[str, float]:
    """Train the ``role`` (``evaluator`` or ``evaluator_heldout``) network on ``train_logs``; write ``out``.
    ``source``: the configs and files ``train_logs`` were made with beyond the splits, so that an interrupted fit
    resumes only on the same logs. ``warm_start``: an evaluator file to continue from (its architecture, input
    normalisation and weights) instead of a fresh network; ``max_epochs`` overrides the section's. ``grouped``: the
    training batches when requests hold several pages (``grouped_tensors`` of ``train_logs``' requests), with the
    within-request comparison weighted ``within_weight``. ``dest``: where to write the model (``paths.model(out)``
    unless given)."""
    cfg = params.train_evaluator
    net_cfg = cfg.main if role == "evaluator" else cfg.heldout
    seed_module(net_cfg.seed)
    tr = slate_tensors(train_logs) if grouped is None else grouped
    if warm_start is not None:
        net, record = load_as(warm_start, ListEvaluator)
        hp = record["hparams"]
    else:
        hp = evaluator_hparams(meta, net_cfg, train_logs, params.data.reward.rules, params.world.viewport)
        net = build_evaluator(hp)
        fit_normalization(net.inputs, tr)
        net.fit_groups(candidate_items(tr, GROUP_FIT_ITEMS, net_cfg.seed), seed=net_cfg.seed)
    optim = cfg.optim if max_epochs is None else replace(cfg.optim, max_epochs=max_epochs)
    weights = params.data.reward
    item_w = torch.tensor(_aligned(meta.feedback, weights.item))
    page_w = torch.tensor(_aligned(meta.page_feedback, weights.page))
    module = EvaluatorLitModule(net, optim.lr, optim.weight_decay, within_weight, item_w, page_w)
    configs, files = source
    key = fingerprint(paths, out, cfg, (paths.split("train"), paths.split("val"), *files))
    key += "".join(fingerprint(paths, "", c, ()) for c in configs)
    with _nested_run(out):
        train(module, tr, val_t, optim, params, paths, key)
    info = {
        "stage": "train_evaluator",
        "role": role,
        "n_train_requests": len(train_logs),
        "n_train_pages": len(train_logs) if grouped is None else int((grouped["pages"] >= 0).any(-1).sum()),
        "item_weights": _aligned(meta.feedback, weights.item),
        "page_weights": _aligned(meta.page_feedback, weights.page),
        **meta.__dict__,
    }
    sizes = save_and_log(paths.model(out) if dest is None else dest, "evaluator", hp, net, info)
    return {f"{out}_{k}": v for k, v in sizes.items()}


def _aligned(names: list[str], weights: dict[str, float]) -> list[float]:
    return [float(weights.get(n, 0.0)) for n in names]


@contextmanager
def _nested_run(name: str) -> Iterator[None]:
    """A nested MLflow run per evaluator, so the two trainings' curves do not mix."""
    import mlflow

    if mlflow.active_run() is None:
        yield
        return
    with mlflow.start_run(run_name=f"train_evaluator/{name}", nested=True):
        yield
