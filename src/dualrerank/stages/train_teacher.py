"""Stage ``train_teacher``: the AR teacher (pointer decoder), ``L_MLE + lambda_BPR L_BPR`` on target lists."""

from __future__ import annotations

from dualrerank.config import Params
from dualrerank.models.io import build_teacher
from dualrerank.paths import Paths
from dualrerank.rewards import identity_groups
from dualrerank.stages.common import (
    fingerprint,
    fit_normalization,
    generator_hparams,
    load_data,
    save_and_log,
    supervised_tensors,
    target_judge_meta,
    train,
)
from dualrerank.training.modules import TeacherLitModule

SECTIONS = ("data", "build_targets", "train_teacher")


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg = params.train_teacher
    meta, data = load_data(paths)
    tr, va = (supervised_tensors(data[s], meta, params, paths, s) for s in ("train", "val"))
    hp = generator_hparams(meta, cfg.net)
    if cfg.identity_bias:
        hp["identity_groups"] = identity_groups(meta.item_features, params.data.reward.rules)
    net = build_teacher(hp)
    fit_normalization(net.encoder.inputs, tr)
    module = TeacherLitModule(net, cfg.optim.lr, cfg.optim.weight_decay, cfg.lambda_bpr, cfg.bpr_negatives)
    key = fingerprint(
        paths, "train_teacher", cfg, (paths.split("train"), paths.split("val"), paths.target_file("train"))
    )
    train(module, tr, va, cfg.optim, params, paths, key)
    info = {
        "stage": "train_teacher",
        "target": params.build_targets.kind,
        "beam_width": cfg.beam_width,
        **meta.__dict__,
        **target_judge_meta(paths),
    }
    return save_and_log(paths.model("teacher"), "teacher", hp, net, info)
