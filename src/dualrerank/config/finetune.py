"""``finetune`` section: streaming RL fine-tuning of the distilled NAR student, LDRO and its GRPO baseline
(docs/method.md). Choices marked [ours] are reconstructions kept as switches (README, docs/finetune.md).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from dualrerank.config.base import Section, check


class RankDecayConfig(Section):
    """Rank-Decay Modulation [ours]: slot weights of the policy-gradient terms, normalised to sum to K."""

    kind: Literal["log", "geometric", "uniform"]
    gamma: float
    viewport_boost: float


class LdroConfig(Section):
    eta: float  # EMA rate of the per-component streaming scale
    batch_renorm: bool  # standardise the summed advantage over the batch (GDPO)
    weight_units: Literal["reward", "normalised"]  # [ours] see losses/policy.py
    rank_decay: RankDecayConfig
    kl_reference: Literal["student", "teacher"]  # frozen distilled student, or the teacher on the prefix
    kd_weight: float  # lambda_KD of the Sequential-KD anchor
    kd_temperature: float

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(0 < self.eta <= 1, "ldro.eta must be in (0, 1]")
        check(self.kd_weight >= 0 and self.kd_temperature > 0, "ldro.kd_weight >= 0 and kd_temperature > 0")
        return self


class ExploreConfig(Section):
    """``explore`` section [ours]: one on-policy logging round for the reward model (docs/finetune.md)."""

    enabled: bool
    pages_per_request: int  # the student's Gumbel-sampled pages shown per training request
    temperature: float  # the student's sampling temperature
    seed: int
    refit_epochs: int  # the evaluators continue from the logged ones (warm start) for this many epochs
    within_weight: float  # weight of the within-request comparison of a request's pages (0 = regression alone)

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.pages_per_request >= 1 and self.temperature > 0, "pages_per_request >= 1 and temperature > 0")
        check(self.refit_epochs >= 1, "explore.refit_epochs must be >= 1")
        check(self.within_weight >= 0, "explore.within_weight must be >= 0")
        return self


class GrpoConfig(Section):
    ratio: Literal["position", "sequence"]  # per-position ratios (uniform weights) or one per list


class FinetuneRewardConfig(Section):
    """Fine-tuning's own reward components (0 = off). ``evaluator`` maps response names to weights; null takes
    the business objective ``data.reward`` (item and page weights). The prior rules are part of the business
    objective too (``data.reward.prior``): the same for target building, fine-tuning and the Best-of-N judge."""

    evaluator: dict[str, float] | None
    slot_decay: float  # evaluator per-slot responses summed with decay^(rows below the viewport)
    posterior: dict[str, float]


class FinetuneConfig(Section):
    """The production fine-tuning run: one LDRO pass at ``lr`` over the newest ``window`` training requests,
    starting from ``init``: the freshly ``distilled`` student, the registry's ``champion`` or its ``latest``
    version (either falls back to the distilled student while the registry has none, and says so)."""

    init: Literal["distilled", "champion", "latest"]
    lr: float
    window: int  # newest training requests streamed, one pass of batch_size requests per step
    batch_size: int  # B requests per step
    group_size: int  # G lists per request, the same for both methods
    include_greedy: bool  # the greedy list is sample 0 of every group
    temperature: float  # sampling temperature of the policy
    ppo_epochs: int  # optimiser steps per batch; > 1 reuses the batch and clipping matters
    clip_eps: float
    kl_coef: float  # beta, both methods
    weight_decay: float
    grad_clip: float
    probe_requests: int | None  # validation requests of the probe curve; None: all of them
    probe_every: int  # steps between two probes
    seed: int
    ldro: LdroConfig
    grpo: GrpoConfig
    reward: FinetuneRewardConfig

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.window >= 1 and self.batch_size >= 1, "finetune.window and batch_size must be >= 1")
        check(self.lr > 0, "finetune.lr must be positive")
        check(self.group_size >= 2, "finetune.group_size must be >= 2 (advantages are relative to the group)")
        check(self.ppo_epochs >= 1 and self.temperature > 0, "ppo_epochs >= 1 and temperature > 0")
        check(self.probe_every >= 1, "finetune.probe_every must be >= 1")
        check(self.probe_requests is None or self.probe_requests >= 1, "finetune.probe_requests must be >= 1 or null")
        return self
