"""Sections of the supervised training stages: ``train_teacher``, ``train_nar``, ``distill``,
``train_evaluator``, ``train_pointwise``."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from dualrerank.config.base import Section, check

TargetKind = Literal["reward_sorted", "logged", "reward_weighted", "evaluator_best"]


class NetConfig(Section):
    d_model: int
    n_heads: int
    enc_layers: int
    dec_layers: int
    dropout: float

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.d_model % self.n_heads == 0, "d_model must be divisible by n_heads")
        return self


class OptimConfig(Section):
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int  # early stopping on the validation loss
    grad_clip: float
    limit_train_batches: float  # share (or count, if > 1) of training batches per epoch

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.lr > 0 and self.batch_size >= 1 and self.max_epochs >= 1, "lr, batch_size, max_epochs must be > 0")
        return self


class BuildTargetsConfig(Section):
    """Target lists of the supervised generators (teacher, NAR baseline, KD ground-truth term) [ours].

    ``reward_sorted``: the logged page reordered by observed per-item reward (ties keep logged order);
    ``logged``: the logged order; ``reward_weighted``: the logged order, each request weighted by
    ``exp(page_reward_z / weight_temperature)``; ``evaluator_best``: the best of ``n_proposals``
    Plackett-Luce perturbations of the pointwise ranking (plus the reordered logged page) under the hybrid
    judge, evaluator + prior rules (``training/relabel.py``).
    """

    kind: TargetKind
    weight_temperature: float
    n_proposals: int
    proposal_temperature: float
    seed: int

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.n_proposals >= 1 and self.proposal_temperature > 0, "n_proposals >= 1, proposal_temperature > 0")
        return self


class TeacherConfig(Section):
    net: NetConfig
    optim: OptimConfig
    lambda_bpr: float
    bpr_negatives: Literal["available", "below"]
    beam_width: int
    identity_bias: bool  # learned bias for repeating an earlier slot's author / category (data.reward.rules)


class NarConfig(Section):
    """The NAR4Rec-like baseline: the student network trained on the ground-truth targets only."""

    net: NetConfig
    optim: OptimConfig


class DistillConfig(Section):
    """Sequential Knowledge Distillation (docs/method.md) [ours where marked there]."""

    dec_layers: int
    dropout: float
    optim: OptimConfig
    encoder: Literal["copy", "shared", "fresh"]  # copy = init from the teacher's encoder, fine-tuned
    temperature: float
    kd_weight: float
    hard_weight: float  # sequence-level hard KD on the teacher's greedy list
    gt_weight: float  # ground-truth term on the logged targets
    position_weights: Literal["uniform", "log", "geometric"]
    hard_only: bool  # ablation: sequence-level hard KD alone

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.temperature > 0, "temperature must be > 0")
        return self


class EvaluatorNetConfig(Section):
    arch: Literal["transformer", "bilstm"]
    residual: bool  # per-item pathway + slot bias added to the sequence model's per-slot output
    pairwise: bool  # explicit pair terms: same author / category (data.reward.rules), learned similarity
    structure: bool  # direct page-structure terms on each slot's outputs: same screen, item before, row neighbour
    d_model: int
    n_heads: int
    n_layers: int
    dropout: float
    seed: int
    # with structure: a learned table over (group of the item before, group of this item), the groups being k-means
    # clusters of the item features named group_prefixes* (0 groups, or no such feature: no table)
    groups: int
    group_prefixes: tuple[str, ...]

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.groups >= 0, "groups must be >= 0")
        check(self.groups == 0 or self.structure, "groups (the structure's transition table) needs structure: true")
        return self


class EvaluatorConfig(Section):
    """The training evaluator (reward, Best-of-N judge) and the held-out evaluator (judge only)."""

    main: EvaluatorNetConfig
    heldout: EvaluatorNetConfig
    optim: OptimConfig
    main_share: float  # share of training requests for the main evaluator; the rest, disjoint, for held-out

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(0 < self.main_share < 1, "main_share must be in (0, 1)")
        return self


class PointwiseConfig(Section):
    d_model: int
    optim: OptimConfig
