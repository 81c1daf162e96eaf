"""``finetune`` section: streaming RL fine-tuning of the distilled NAR student, LDRO and its GRPO baseline
(METHOD §5, paper-notes §6). Choices marked [ours] are reconstructions kept as switches (README, docs/finetune.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from dualrerank.config.base import check


@dataclass(frozen=True)
class RankDecayConfig:
    """Rank-Decay Modulation [ours]: slot weights of the policy-gradient terms, normalised to sum to K."""

    kind: Literal["log", "geometric", "uniform"] = "log"
    gamma: float = 0.8
    viewport_boost: float = 0.0


@dataclass(frozen=True)
class LdroConfig:
    eta: float = 0.1  # EMA rate of the per-component streaming scale
    batch_renorm: bool = True  # standardise the summed advantage over the batch (GDPO)
    weight_units: Literal["reward", "normalised"] = "reward"  # [ours] see losses/policy.py
    rank_decay: RankDecayConfig = field(default_factory=RankDecayConfig)
    kl_reference: Literal["student", "teacher"] = "student"  # frozen distilled student, or the teacher on the prefix
    kd_weight: float = 0.5  # lambda_KD of the Sequential-KD anchor
    kd_temperature: float = 1.0

    def __post_init__(self) -> None:
        check(0 < self.eta <= 1, "ldro.eta must be in (0, 1]")
        check(self.kd_weight >= 0 and self.kd_temperature > 0, "ldro.kd_weight >= 0 and kd_temperature > 0")


@dataclass(frozen=True)
class ExploreConfig:
    """``explore`` section [ours]: one on-policy logging round for the reward model (docs/finetune.md)."""

    enabled: bool = True
    pages_per_request: int = 4  # the student's Gumbel-sampled pages shown per training request
    temperature: float = 1.0  # the student's sampling temperature
    seed: int = 31

    def __post_init__(self) -> None:
        check(self.pages_per_request >= 1 and self.temperature > 0, "pages_per_request >= 1 and temperature > 0")


@dataclass(frozen=True)
class GrpoConfig:
    ratio: Literal["position", "sequence"] = "position"  # per-position ratios (uniform weights) or one per list


@dataclass(frozen=True)
class FinetuneRewardConfig:
    """Fine-tuning's own reward components (0 = off). ``evaluator`` maps response names to weights; null takes
    the business objective ``data.reward`` (item and page weights). The prior rules are part of the business
    objective too (``data.reward.prior``): the same for target building, fine-tuning and the Best-of-N judge."""

    evaluator: dict[str, float] | None = None
    slot_decay: float = 1.0  # evaluator per-slot responses summed with decay^(rows below the viewport)
    posterior: dict[str, float] = field(default_factory=lambda: {"kept_positive": 0.05})


@dataclass(frozen=True)
class FinetuneConfig:
    """The production fine-tuning run: one LDRO pass at ``lr`` over the newest ``window`` training requests,
    starting from ``init``: the freshly ``distilled`` student, the registry's ``champion`` or its ``latest``
    version (either falls back to the distilled student while the registry has none, and says so)."""

    init: Literal["distilled", "champion", "latest"] = "distilled"
    lr: float = 1e-3
    window: int = 9600  # newest training requests streamed, one pass of batch_size requests per step
    batch_size: int = 32  # B requests per step
    group_size: int = 16  # G lists per request, the same for both methods
    include_greedy: bool = True  # the greedy list is sample 0 of every group
    temperature: float = 1.0  # sampling temperature of the policy
    ppo_epochs: int = 1  # optimiser steps per batch; > 1 reuses the batch and clipping matters
    clip_eps: float = 0.2
    kl_coef: float = 0.2  # beta, both methods
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    probe_requests: int | None = 256  # validation requests of the probe curve; None: all of them
    probe_every: int = 20  # steps between two probes
    seed: int = 0
    ldro: LdroConfig = field(default_factory=LdroConfig)
    grpo: GrpoConfig = field(default_factory=GrpoConfig)
    reward: FinetuneRewardConfig = field(default_factory=FinetuneRewardConfig)

    def __post_init__(self) -> None:
        check(self.window >= 1 and self.batch_size >= 1, "finetune.window and batch_size must be >= 1")
        check(self.lr > 0, "finetune.lr must be positive")
        check(self.group_size >= 2, "finetune.group_size must be >= 2 (advantages are relative to the group)")
        check(self.ppo_epochs >= 1 and self.temperature > 0, "ppo_epochs >= 1 and temperature > 0")
        check(self.probe_every >= 1, "finetune.probe_every must be >= 1")
        check(self.probe_requests is None or self.probe_requests >= 1, "finetune.probe_requests must be >= 1 or null")
