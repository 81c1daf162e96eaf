"""LightningModules of the supervised stages. Each wraps a network that is passed in and owns only its
loss, metrics and optimizer (via ``LitBase``)."""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import Tensor

from dualrerank.losses import bpr_loss, hard_kd_loss, mle_loss, sequential_kd_loss
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.sampling import masked_sequential_argmax, position_valid
from dualrerank.training.base import LitBase


class TeacherLitModule(LitBase):
    """AR teacher with teacher forcing: ``L_MLE + lambda_BPR * L_BPR`` on the target list."""

    net: ARTeacher

    def __init__(self, net: ARTeacher, lr: float, weight_decay: float, lambda_bpr: float, bpr_negatives: str) -> None:
        super().__init__(net, lr, weight_decay)
        self.lambda_bpr, self.bpr_negatives = lambda_bpr, bpr_negatives

    def step(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        x, target = self.inputs(batch), batch["target"]
        logits = self.net(x, target)
        mle = mle_loss(logits, target, x.pad_mask, weights=batch["weight"])
        bpr = bpr_loss(logits, target, x.pad_mask, negatives=self.bpr_negatives)
        return mle + self.lambda_bpr * bpr, {"mle": mle, "bpr": bpr}


class StudentLitModule(LitBase):
    """NAR student: ground-truth term and/or Sequential KD from precomputed teacher trajectories."""

    net: NARStudent
    position_weights: Tensor | None

    def __init__(
        self,
        net: NARStudent,
        lr: float,
        weight_decay: float,
        gt_weight: float = 1.0,
        kd_weight: float = 0.0,
        hard_weight: float = 0.0,
        temperature: float = 1.0,
        position_weights: Tensor | None = None,
    ) -> None:
        super().__init__(net, lr, weight_decay)
        self.gt_weight, self.kd_weight, self.hard_weight = gt_weight, kd_weight, hard_weight
        self.temperature = temperature
        self.register_buffer("position_weights", position_weights)

    def step(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        x = self.inputs(batch)
        logits = self.net(x)
        terms: dict[str, Tensor] = {}
        if self.gt_weight:
            terms["gt"] = mle_loss(logits, batch["target"], x.pad_mask, weights=batch["weight"])
        if self.kd_weight:
            terms["kd"] = sequential_kd_loss(
                logits,
                batch["teacher_logits"],
                batch["trajectory"],
                x.pad_mask,
                temperature=self.temperature,
                position_weights=self.position_weights,
            )
        if self.hard_weight:
            terms["hard_kd"] = hard_kd_loss(logits, batch["trajectory"], x.pad_mask)
        weights = {"gt": self.gt_weight, "kd": self.kd_weight, "hard_kd": self.hard_weight}
        loss = sum(weights[k] * v for k, v in terms.items())
        if "trajectory" in batch:  # PTAR: agreement of the decoded list with the teacher's greedy list
            valid = position_valid(x.pad_mask, logits.shape[1])
            agree = masked_sequential_argmax(logits.detach(), x.pad_mask) == batch["trajectory"]
            terms["ptar"] = (agree & valid).sum() / valid.sum().clamp(min=1)
        return loss, terms  # type: ignore[return-value]


class EvaluatorLitModule(LitBase):
    """List-wise evaluator on logged pages: BCE for binary responses, MSE (in target-scale units) otherwise."""

    net: ListEvaluator

    def step(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        x, page = self.inputs(batch), batch["logged_page"]
        item_out, page_out = self.net(x, page[:, None, :])
        item_out, page_out = item_out[:, 0], page_out[:, 0]  # [B, K, L], [B, P]
        idx = page.clamp(min=0)[..., None].expand(-1, -1, batch["feedback"].shape[-1])
        y = batch["feedback"].gather(1, idx)  # [B, K, L]
        shown = page >= 0
        metrics: dict[str, Tensor] = {}
        for l, kind in enumerate(self.net.item_kinds):
            out, target = item_out[..., l][shown], y[..., l][shown]
            if kind == "binary":
                metrics[f"item_{l}"] = nnf.binary_cross_entropy_with_logits(out, target)
            else:
                metrics[f"item_{l}"] = nnf.mse_loss(nnf.softplus(out), target / self.net.item_scales[l])
        for p, kind in enumerate(self.net.page_kinds):
            target, known = batch["page_feedback"][:, p], ~torch.isnan(batch["page_feedback"][:, p])
            out = page_out[:, p][known]
            loss = (
                nnf.binary_cross_entropy_with_logits(out, target[known])
                if kind == "binary"
                else nnf.mse_loss(out, target[known])
            )
            metrics[f"page_{p}"] = loss
        return torch.stack(list(metrics.values())).sum(), metrics


class PointwiseLitModule(LitBase):
    """Position-aware regression of the per-item reward of shown items (PAL-style, see PointwiseScorer)."""

    net: PointwiseScorer

    def step(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        x, page = self.inputs(batch), batch["logged_page"]
        scores = self.net(x).gather(1, page.clamp(min=0))  # [B, K]
        slots = torch.arange(page.shape[1], device=page.device).expand_as(page)
        pred = self.net.expected_reward(scores, slots)
        target = batch["item_reward"].gather(1, page.clamp(min=0))
        shown = page >= 0
        return nnf.mse_loss(pred[shown], target[shown]), {}
