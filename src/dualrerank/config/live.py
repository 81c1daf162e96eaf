"""``live`` section: the live loop (``dualrerank live``, docs/live.md). Rounds of served traffic from the world's
users, split between arms, each learning arm fine-tuned on its logs; a drift in what the world's users value."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from dualrerank.config.base import Section, check

Arm = Literal["control", "ldro", "grpo"]


class LiveDriftConfig(Section):
    """From round ``round`` on, the world's users change what they value (null: no drift). ``watch_scale``
    multiplies every watch time; ``sat_prob`` is the new chance that a served intent or a completed view ends the
    request satisfied. The business objective (``data.reward``) does not change: the best page does."""

    round: int | None
    watch_scale: float
    sat_prob: float

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.round is None or self.round >= 1, "live.drift.round must be >= 1 (round 0 is the start) or null")
        check(self.watch_scale > 0 and 0 <= self.sat_prob <= 1, "watch_scale > 0 and sat_prob in [0, 1]")
        return self


class LiveConfig(Section):
    rounds: int  # rounds of traffic, each followed by one learning step per learning arm
    requests_per_round: int  # fresh requests per round, split between the arms by user
    arms: tuple[Arm, ...]  # control: the round-0 version, frozen; ldro / grpo: the loop with that method
    shares: tuple[float, ...] | None  # traffic share per arm (null: equal)
    n_samples: int  # Best-of-N size the services serve (the released size)
    window: int  # newest logged requests each learning arm is fine-tuned on
    gate_requests: int  # the newest requests of a round, kept out of its learning: the gate compares on them
    evaluator_epochs: int  # at most this many epochs of the evaluators' warm-started update on the logs so far
    evaluator_lr: float  # its learning rate (a gentle update keeps what the evaluators learned from varied pages)
    evaluator_val_requests: int  # the newest learning requests held out of that update: it keeps its best epoch there
    replay_rounds: int  # earlier rounds' logs the evaluators see again beside the newest round's
    lr: dict[str, float]  # per learning arm
    min_improvement: float  # the challenger must beat the arm's current version by more than this (held-out)
    chunk: int  # requests served and logged per log-store append
    batch_size: int  # requests per in-process Best-of-N pass (gate, report); the pages do not depend on it
    offline_requests: int | None  # test requests of the offline headroom (null: all)
    seed: int
    startup_timeout_s: float
    drift: LiveDriftConfig

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.rounds >= 1 and self.requests_per_round >= 1, "live.rounds and requests_per_round must be >= 1")
        check(len(set(self.arms)) == len(self.arms) and "control" in self.arms, "live.arms: distinct, with control")
        check(self.shares is None or len(self.shares) == len(self.arms), "live.shares: one share per arm, or null")
        check(all(a in self.lr for a in self.arms if a != "control"), "live.lr needs a rate for each learning arm")
        check(0 < self.gate_requests < self.requests_per_round, "live.gate_requests in (0, requests_per_round)")
        check(
            0 < self.evaluator_val_requests < self.requests_per_round - self.gate_requests,
            "live.evaluator_val_requests in (0, requests_per_round - gate_requests)",
        )
        sizes = (self.window, self.chunk, self.n_samples, self.batch_size)
        check(min(sizes) >= 1, "live.window, chunk, n_samples and batch_size must be >= 1")
        check(self.evaluator_epochs >= 1 and self.replay_rounds >= 0, "evaluator_epochs >= 1, replay_rounds >= 0")
        check(self.evaluator_lr > 0, "live.evaluator_lr must be > 0")
        check(self.drift.round is None or self.drift.round < self.rounds, "live.drift.round must be < live.rounds")
        return self
