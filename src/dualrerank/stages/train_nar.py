"""Stage ``train_nar``: the NAR4Rec-like baseline, the student network on ground-truth targets only."""

from __future__ import annotations

from dualrerank.config import Params
from dualrerank.models.io import build_student
from dualrerank.paths import Paths
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
from dualrerank.training.modules import StudentLitModule

SECTIONS = ("data", "build_targets", "train_nar")


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg = params.train_nar
    meta, data = load_data(paths)
    tr, va = (supervised_tensors(data[s], meta, params, paths, s) for s in ("train", "val"))
    hp = generator_hparams(meta, cfg.net)
    net = build_student(hp)
    fit_normalization(net.encoder.inputs, tr)
    module = StudentLitModule(net, cfg.optim.lr, cfg.optim.weight_decay, gt_weight=1.0)
    key = fingerprint(paths, "train_nar", cfg, (paths.split("train"), paths.split("val"), paths.target_file("train")))
    train(module, tr, va, cfg.optim, params, paths, key)
    return save_and_log(
        paths.model("nar"), "student", hp, net, {"stage": "train_nar", **meta.__dict__, **target_judge_meta(paths)}
    )
