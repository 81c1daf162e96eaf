"""Sections of the supervised training stages: ``train_teacher``, ``train_nar``, ``distill``,
``train_evaluator``, ``train_pointwise``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dualrerank.config.base import check

TargetKind = Literal["reward_sorted", "logged", "reward_weighted", "evaluator_best"]


@dataclass(frozen=True)
class NetConfig:
    d_model: int = 64
    n_heads: int = 4
    enc_layers: int = 2
    dec_layers: int = 2
    dropout: float = 0.1

    def __post_init__(self) -> None:
        check(self.d_model % self.n_heads == 0, "d_model must be divisible by n_heads")


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    max_epochs: int = 10
    patience: int = 3  # early stopping on the validation loss
    grad_clip: float = 1.0
    limit_train_batches: float = 1.0  # share (or count, if > 1) of training batches per epoch

    def __post_init__(self) -> None:
        check(self.lr > 0 and self.batch_size >= 1 and self.max_epochs >= 1, "lr, batch_size, max_epochs must be > 0")


@dataclass(frozen=True)
class BuildTargetsConfig:
    """Target lists of the supervised generators (teacher, NAR baseline, KD ground-truth term) [ours].

    ``reward_sorted``: the logged page reordered by observed per-item reward (ties keep logged order);
    ``logged``: the logged order; ``reward_weighted``: the logged order, each request weighted by
    ``exp(page_reward_z / weight_temperature)``; ``evaluator_best``: the best of ``n_proposals``
    Plackett-Luce perturbations of the pointwise ranking (plus the reordered logged page) under the hybrid
    judge, evaluator + prior rules (``training/relabel.py``).
    """

    kind: TargetKind = "evaluator_best"
    weight_temperature: float = 1.0
    n_proposals: int = 32
    proposal_temperature: float = 0.5
    seed: int = 13

    def __post_init__(self) -> None:
        check(self.n_proposals >= 1 and self.proposal_temperature > 0, "n_proposals >= 1, proposal_temperature > 0")


@dataclass(frozen=True)
class TeacherConfig:
    net: NetConfig = field(default_factory=NetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    lambda_bpr: float = 0.5
    bpr_negatives: Literal["available", "below"] = "available"
    beam_width: int = 4
    identity_bias: bool = False  # learned bias for repeating an earlier slot's author / category (data.reward.rules)


@dataclass(frozen=True)
class NarConfig:
    """The NAR4Rec-like baseline: the student network trained on the ground-truth targets only."""

    net: NetConfig = field(default_factory=NetConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)


@dataclass(frozen=True)
class DistillConfig:
    """Sequential Knowledge Distillation (METHOD §3, paper-notes §5) [ours where marked there]."""

    dec_layers: int = 2
    dropout: float = 0.1
    optim: OptimConfig = field(default_factory=OptimConfig)
    encoder: Literal["copy", "shared", "fresh"] = "copy"  # copy = init from the teacher's encoder, fine-tuned
    temperature: float = 1.0
    kd_weight: float = 1.0
    hard_weight: float = 0.0  # sequence-level hard KD on the teacher's greedy list
    gt_weight: float = 0.1  # ground-truth term on the logged targets
    position_weights: Literal["uniform", "log", "geometric"] = "uniform"
    hard_only: bool = False  # ablation: sequence-level hard KD alone

    def __post_init__(self) -> None:
        check(self.temperature > 0, "temperature must be > 0")


@dataclass(frozen=True)
class EvaluatorNetConfig:
    arch: Literal["transformer", "bilstm"] = "transformer"
    residual: bool = False  # per-item pathway + slot bias added to the sequence model's per-slot output
    pairwise: bool = False  # explicit pair terms: same author / category (data.reward.rules), learned similarity
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    dropout: float = 0.1
    seed: int = 11


@dataclass(frozen=True)
class EvaluatorConfig:
    """The training evaluator (reward, Best-of-N judge) and the held-out evaluator (judge only)."""

    main: EvaluatorNetConfig = field(default_factory=EvaluatorNetConfig)
    heldout: EvaluatorNetConfig = field(default_factory=lambda: EvaluatorNetConfig(arch="bilstm", seed=23))
    optim: OptimConfig = field(default_factory=OptimConfig)
    main_share: float = 0.5  # share of training requests for the main evaluator; the rest, disjoint, for held-out

    def __post_init__(self) -> None:
        check(0 < self.main_share < 1, "main_share must be in (0, 1)")


@dataclass(frozen=True)
class PointwiseConfig:
    d_model: int = 64
    optim: OptimConfig = field(default_factory=OptimConfig)
