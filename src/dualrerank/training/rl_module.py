"""Streaming RL fine-tuning of the NAR student: LDRO or its GRPO baseline, as one LightningModule.

Every streamed batch of ``B`` requests: one NAR pass -> ``G`` lists per request by vectorized Gumbel-Max
(greedy in slot 0) -> hybrid reward vector ``[B, G, R]`` (training evaluator + rules, times the stream's
``reward_scale``: the injected drift) -> advantages -> ``ppo_epochs`` optimiser steps on the same lists
(manual optimisation; the first step is on-policy, so its ratios are 1). The student runs without dropout so
that sampling and gradient see the same policy. The LDRO scale EMA lives in buffers, so a checkpoint keeps it.

Batch fields besides the model inputs: ``item_reward [B, N]`` (posterior rules), ``reward_scale [B, R]``,
``ref_logits [B, K, N]`` (the frozen distilled student), ``trajectory [B, K]`` and ``teacher_logits [B, K, N]``
(the teacher's greedy list and step logits, for the KD anchor).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from dualrerank.config.finetune import FinetuneConfig
from dualrerank.data.schema import PAD_INDEX
from dualrerank.losses import rank_decay_weights, sequential_kd_loss
from dualrerank.losses.policy import (
    clipped_surrogate,
    decoupled_advantages,
    ema_update,
    exact_kl,
    group_centre,
    grpo_advantages,
    k3_kl,
    per_list_sum,
    residual_scale,
)
from dualrerank.models.components import SlateInputs
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.rewards import RewardSpec, hybrid_reward
from dualrerank.sampling import gumbel_max_sample, masked_sequential_argmax, sequence_log_prob

METHODS = ("ldro", "grpo")
PROBE_CHUNK = 512  # probe requests per forward pass


class PolicyLitModule(L.LightningModule):
    ema_scale: Tensor
    ema_ready: Tensor
    ref_scale: Tensor
    rank_weights: Tensor
    reward_weights: Tensor

    def __init__(
        self,
        net: NARStudent,
        evaluator: ListEvaluator,
        spec: RewardSpec,
        cfg: FinetuneConfig,
        method: str,
        lr: float,
        teacher: ARTeacher | None = None,
        probe: dict[str, Tensor] | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
        if method == "ldro" and cfg.ldro.kl_reference == "teacher" and teacher is None:
            raise ValueError("kl_reference 'teacher' needs the teacher network")
        self.automatic_optimization = False
        self.net, self.evaluator = net, evaluator.requires_grad_(False)
        self.teacher = teacher.requires_grad_(False) if teacher is not None else None
        self.spec, self.cfg, self.method, self.lr, self.seed = spec, cfg, method, lr, seed
        R, K = len(spec.components), net.page_len
        self.register_buffer("reward_weights", spec.weight_vector())
        self.register_buffer("ema_scale", torch.ones(R))
        self.register_buffer("ema_ready", torch.zeros(R, dtype=torch.bool))
        self.register_buffer("ref_scale", torch.ones(R))
        rd = cfg.ldro.rank_decay
        self.register_buffer("rank_weights", rank_decay_weights(K, rd.kind, rd.gamma, spec.viewport, rd.viewport_boost))
        self.probe = probe
        self.curve: list[tuple[int, float]] = []  # (batches seen, normalised reward) on the probe requests
        self.probe_pages: list[Tensor] = []  # the greedy lists ``[P, K]`` at every probe point, on the CPU
        self.generator: torch.Generator | None = None

    # --- rewards --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def rewards(self, x: SlateInputs, pages: Tensor, item_reward: Tensor | None) -> Tensor:
        """``[B, G, R]`` hybrid reward vector (undrifted) of lists ``pages [B, G, K]``."""
        item_e, page_e = self.evaluator.expected(x, pages)
        return hybrid_reward(self.spec, item_e, page_e, x, pages, item_reward)

    @torch.no_grad()
    def advantages(self, rewards: Tensor) -> Tensor:
        """``[B, G]``; LDRO first updates its streaming scale with this batch (no grad, before use)."""
        if self.method == "grpo":
            return grpo_advantages(rewards, self.reward_weights)
        c = self.cfg.ldro
        was_ready = self.ema_ready.clone()
        scale, ready = ema_update(self.ema_scale, self.ema_ready, residual_scale(group_centre(rewards)), c.eta)
        self.ema_scale.copy_(scale)
        self.ema_ready.copy_(ready)
        self.ref_scale.copy_(torch.where(ready & ~was_ready, scale, self.ref_scale))
        ref = self.ref_scale if c.weight_units == "reward" else None
        return decoupled_advantages(rewards, self.reward_weights, self.ema_scale, ref, c.batch_renorm)

    @torch.no_grad()
    def probe_point(self, step: int) -> float:
        """Probe figure [ours]: mean intended reward of the greedy list / that of the upstream list. The greedy
        lists are kept (``probe_pages``), so the stage can score the same curve with a judge it never trains on."""
        assert self.probe is not None
        greedy, total = [], torch.zeros(2, device=self.device)
        for a in range(0, len(self.probe["pad_mask"]), PROBE_CHUNK):  # chunked: the probe may be a whole split
            chunk = {k: v[a : a + PROBE_CHUNK] for k, v in self.probe.items()}
            x = SlateInputs.from_batch(chunk)
            greedy.append(masked_sequential_argmax(self.net(x), x.pad_mask))
            pages = torch.stack([greedy[-1], chunk["upstream_page"]], dim=1)  # [P, 2, K]
            total += (self.rewards(x, pages, chunk["item_reward"]) * self.reward_weights).sum((0, 2))  # [2]
        value = float(total[0] / total[1])
        self.curve.append((step, value))
        self.probe_pages.append(torch.cat(greedy).cpu())
        return value

    # --- loss -----------------------------------------------------------------------------------------------
    def loss(
        self, batch: dict[str, Tensor], x: SlateInputs, pages: Tensor, logp_old: Tensor, adv: Tensor, ref: Tensor
    ) -> tuple[Tensor, dict[str, Tensor]]:
        cfg, tau = self.cfg, self.cfg.temperature
        logits = self.net(x)
        logp = sequence_log_prob(logits, x.pad_mask, pages, tau)  # [B, G, K], with grad
        valid = pages != PAD_INDEX
        if self.method == "grpo":
            pg = clipped_surrogate(logp, logp_old, adv, valid, None, cfg.clip_eps, cfg.grpo.ratio)
            kl = per_list_sum(k3_kl(logp, ref, valid), valid)
            return pg + cfg.kl_coef * kl, {"pg": pg, "kl": kl}
        pg = clipped_surrogate(logp, logp_old, adv, valid, self.rank_weights, cfg.clip_eps, "position")
        kl = per_list_sum(exact_kl(logits, ref, x.pad_mask, pages, tau), valid)
        kd = sequential_kd_loss(
            logits, batch["teacher_logits"], batch["trajectory"], x.pad_mask, cfg.ldro.kd_temperature
        )
        return pg + cfg.kl_coef * kl + cfg.ldro.kd_weight * kd, {"pg": pg, "kl": kl, "kd": kd}

    @torch.no_grad()
    def reference(self, batch: dict[str, Tensor], x: SlateInputs, pages: Tensor) -> Tensor:
        """GRPO: the reference's log-probs of the sampled positions ``[B, G, K]``; LDRO: reference logits,
        ``[B, K, N]`` (frozen student) or ``[B, G, K, N]`` (the teacher run along every sampled list)."""
        if self.method == "grpo":
            return sequence_log_prob(batch["ref_logits"], x.pad_mask, pages, self.cfg.temperature)
        if self.cfg.ldro.kl_reference == "student":
            return batch["ref_logits"]
        assert self.teacher is not None
        return self.teacher.forward_group(x, pages)

    # --- Lightning hooks ------------------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        if self.probe is not None:
            self.probe = {k: v.to(self.device) for k, v in self.probe.items()}
            self.eval()
            self.curve, self.probe_pages = [], []
            self.probe_point(0)

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self.eval()  # no dropout: the sampled lists and their gradients come from one and the same policy

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        cfg = self.cfg
        x = SlateInputs.from_batch(batch)
        with torch.no_grad():
            logits = self.net(x)
            pages, logp_old = gumbel_max_sample(
                logits, x.pad_mask, cfg.group_size, cfg.temperature, cfg.include_greedy, self.generator
            )
            clean = self.rewards(x, pages, batch["item_reward"])
            adv = self.advantages(clean * batch["reward_scale"][:, None, :])
            ref = self.reference(batch, x, pages)
        opt = self.optimizers()
        for _ in range(cfg.ppo_epochs):
            loss, terms = self.loss(batch, x, pages, logp_old, adv, ref)
            opt.zero_grad()  # type: ignore[union-attr]
            self.manual_backward(loss)
            self.clip_gradients(opt, gradient_clip_val=cfg.grad_clip, gradient_clip_algorithm="norm")  # type: ignore[arg-type]
            opt.step()  # type: ignore[union-attr]
        B = x.pad_mask.shape[0]
        reward = (clean * self.reward_weights).sum(-1)  # [B, G] in the intended weights
        logs = {"loss": loss, "reward": reward.mean(), "greedy_reward": reward[:, 0].mean(), **terms}
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, on_step=True, on_epoch=False, batch_size=B)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.probe is not None and (batch_idx + 1) % self.cfg.probe_every == 0:
            value = self.probe_point(batch_idx + 1)
            self.log("probe/normalised_reward", value, on_step=True, on_epoch=False)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.net.parameters() if p.requires_grad]
        return torch.optim.AdamW(params, lr=self.lr, weight_decay=self.cfg.weight_decay)
