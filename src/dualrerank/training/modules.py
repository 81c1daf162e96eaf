"""LightningModules of the supervised stages. Each wraps a network that is passed in and owns only its
loss, metrics and optimizer (via ``LitBase``)."""

from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import Tensor

from dualrerank.losses import bpr_loss, hard_kd_loss, mle_loss, sequential_kd_loss
from dualrerank.losses.reward_model import within_request_mse
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
    """List-wise evaluator on logged pages: BCE for binary responses, MSE (in target-scale units) otherwise, and,
    with ``within_weight`` and several pages per request, the within-request comparison of their utilities.

    A batch holds either one logged page per request (``logged_page``, ``feedback`` per candidate,
    ``page_feedback``) or several (``pages [B, G, K]``, ``slot_feedback [B, G, K, L]`` per slot,
    ``page_outcomes [B, G, P]``; see ``data.datamodule.grouped_tensors``): the request's items are encoded once
    for all its pages.
    """

    net: ListEvaluator
    item_weights: Tensor
    page_weights: Tensor

    def __init__(
        self,
        net: ListEvaluator,
        lr: float,
        weight_decay: float,
        within_weight: float = 0.0,
        item_weights: Tensor | None = None,
        page_weights: Tensor | None = None,
    ) -> None:
        super().__init__(net, lr, weight_decay)
        self.within_weight = within_weight
        L, P = len(net.item_kinds), len(net.page_kinds)
        self.register_buffer("item_weights", item_weights if item_weights is not None else torch.zeros(L))
        self.register_buffer("page_weights", page_weights if page_weights is not None else torch.zeros(P))

    def step(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        x = self.inputs(batch)
        pages, y, outcomes = page_targets(batch)  # [B, G, K], [B, G, K, L], [B, G, P]
        item_out, page_out = self.net(x, pages)
        shown = pages >= 0
        metrics: dict[str, Tensor] = {}
        for l, kind in enumerate(self.net.item_kinds):
            out, target = item_out[..., l][shown], y[..., l][shown]
            if kind == "binary":
                metrics[f"item_{l}"] = nnf.binary_cross_entropy_with_logits(out, target)
            else:
                metrics[f"item_{l}"] = nnf.mse_loss(nnf.softplus(out), target / self.net.item_scales[l])
        page_shown = shown.any(-1)  # [B, G]
        for p, kind in enumerate(self.net.page_kinds):
            target = outcomes[..., p]
            known = ~torch.isnan(target) & page_shown
            out = page_out[..., p][known]
            loss = (
                nnf.binary_cross_entropy_with_logits(out, target[known])
                if kind == "binary"
                else nnf.mse_loss(out, target[known])
            )
            metrics[f"page_{p}"] = loss
        total = torch.stack(list(metrics.values())).sum()
        if self.within_weight and pages.shape[1] > 1:
            item_e, page_e = self.net.to_expected(item_out, page_out, pages)
            predicted = (item_e * self.item_weights).sum((-1, -2)) + (page_e * self.page_weights).sum(-1)
            logged = (y * self.item_weights).sum(-1).masked_fill(~shown, 0.0).sum(-1)
            logged = logged + (outcomes.nan_to_num(0.0) * self.page_weights).sum(-1)
            metrics["within"] = within_request_mse(predicted, logged, page_shown)
            total = total + self.within_weight * metrics["within"]
        return total, metrics


def page_targets(batch: dict[str, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """``(pages [B, G, K], per-slot feedback [B, G, K, L], page outcomes [B, G, P])`` of a batch of either layout
    (see ``EvaluatorLitModule``); one logged page per request is ``G = 1``."""
    if "pages" in batch:
        return batch["pages"], batch["slot_feedback"], batch["page_outcomes"]
    page = batch["logged_page"]
    idx = page.clamp(min=0)[..., None].expand(-1, -1, batch["feedback"].shape[-1])
    y = batch["feedback"].gather(1, idx)  # [B, K, L]
    return page[:, None], y[:, None], batch["page_feedback"][:, None]


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
