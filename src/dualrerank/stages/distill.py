"""Stage ``distill``: Sequential Knowledge Distillation of the frozen AR teacher into the NAR student.

The teacher greedy-decodes every training request once; its step logits along that trajectory are the
soft targets of the student's prefix-masked distributions (``losses.sequential_kd_loss``), optionally
with a hard sequence-level term and the ground-truth term.
"""

from __future__ import annotations

from dualrerank.config import Params
from dualrerank.losses import rank_decay_weights
from dualrerank.models.io import build_student, load_model
from dualrerank.models.teacher import ARTeacher, teacher_trajectories
from dualrerank.paths import Paths
from dualrerank.stages.common import fingerprint, fit_normalization, load_data, save_and_log, supervised_tensors, train
from dualrerank.training.modules import StudentLitModule

SECTIONS = ("data", "build_targets", "distill")


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg = params.distill
    meta, data = load_data(paths)
    teacher, record = load_model(paths.model("teacher"))
    assert isinstance(teacher, ARTeacher)
    tensors = {}
    for split in ("train", "val"):
        t = supervised_tensors(data[split], meta, params, paths, split)
        t["trajectory"], t["teacher_logits"] = teacher_trajectories(teacher, t)
        tensors[split] = t
    hp = {k: v for k, v in record["hparams"].items() if k != "identity_groups"}  # the teacher's decoder only
    hp.update(dec_layers=cfg.dec_layers, dropout=cfg.dropout)
    student = build_student(hp)
    if cfg.encoder == "fresh":
        fit_normalization(student.encoder.inputs, tensors["train"])
    else:  # copy: start from the teacher's encoder and fine-tune it; shared: reuse it frozen
        student.encoder.load_state_dict(teacher.encoder.state_dict())
        student.encoder.requires_grad_(cfg.encoder == "copy")
    K = hp["page_len"]
    weights = None if cfg.position_weights == "uniform" else rank_decay_weights(K, kind=cfg.position_weights)
    gt, kd, hard = (0.0, 0.0, 1.0) if cfg.hard_only else (cfg.gt_weight, cfg.kd_weight, cfg.hard_weight)
    module = StudentLitModule(
        student,
        cfg.optim.lr,
        cfg.optim.weight_decay,
        gt_weight=gt,
        kd_weight=kd,
        hard_weight=hard,
        temperature=cfg.temperature,
        position_weights=weights,
    )
    key = fingerprint(paths, "distill", cfg, (paths.split("train"), paths.target_file("train"), paths.model("teacher")))
    train(module, tensors["train"], tensors["val"], cfg.optim, params, paths, key)
    return save_and_log(
        paths.model("student"), "student", hp, student, {**record["meta"], "stage": "distill", "encoder": cfg.encoder}
    )
