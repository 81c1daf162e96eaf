"""Stage ``train_pointwise``: the score-and-sort baseline, a pointwise per-item reward model."""

from __future__ import annotations

from dualrerank.config import Params
from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.data.targets import item_reward
from dualrerank.models.io import build_pointwise
from dualrerank.paths import Paths
from dualrerank.stages.common import fingerprint, fit_normalization, load_data, save_and_log, train
from dualrerank.training.modules import PointwiseLitModule

SECTIONS = ("data", "train_pointwise")


def pointwise_tensors(slates: Slates, meta: SlateMeta, params: Params) -> dict:
    return slate_tensors(slates, {"item_reward": item_reward(slates, meta, params.data.reward.item)})


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg = params.train_pointwise
    meta, data = load_data(paths)
    tr, va = (pointwise_tensors(data[s], meta, params) for s in ("train", "val"))
    hp = {
        "n_item_features": len(meta.item_features),
        "n_context_features": len(meta.context_features),
        "d_model": cfg.d_model,
        "page_len": meta.page_len,
    }
    net = build_pointwise(hp)
    fit_normalization(net.inputs, tr)
    module = PointwiseLitModule(net, cfg.optim.lr, cfg.optim.weight_decay)
    key = fingerprint(paths, "train_pointwise", cfg, (paths.split("train"), paths.split("val")))
    train(module, tr, va, cfg.optim, params, paths, key)
    return save_and_log(paths.model("pointwise"), "pointwise", hp, net, {"stage": "train_pointwise", **meta.__dict__})
