"""Diagnostics of the paper (docs/method.md): PTAR, ranking collapse, teacher entropy and the
Entropy-Consistency Gap. Inputs are model outputs on held-out requests."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from dualrerank import metrics
from dualrerank.models.components import SlateInputs
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.sampling import masked_sequential_argmax, position_valid, pre_dedup_argmax, prefix_masked_log_softmax


@torch.inference_mode()
def student_vs_teacher(student: NARStudent, teacher_lists: Tensor, x: SlateInputs, viewport: int) -> dict[str, float]:
    """PTAR (all slots, viewport), exact-list agreement, set overlap@K, pre-dedup collapse rate and share, and the
    mean pairwise JS divergence between the student's position distributions."""
    logits = student(x)
    pre_dedup = pre_dedup_argmax(logits, x.pad_mask).numpy()
    decoded = masked_sequential_argmax(logits, x.pad_mask).numpy()
    teacher_np = teacher_lists.numpy()
    probs = torch.softmax(logits.masked_fill(x.pad_mask[:, None, :], float("-inf")), dim=-1).numpy()
    return {
        "ptar": metrics.ptar(decoded, teacher_np),
        "ptar_viewport": metrics.ptar(decoded, teacher_np, k=viewport),
        "exact_agreement": metrics.exact_list_agreement(decoded, teacher_np),
        "set_overlap": metrics.set_overlap(decoded, teacher_np),
        "collapse_rate": metrics.collapse_rate(pre_dedup),
        "collapse_share": metrics.collapse_share(pre_dedup),
        "position_divergence": metrics.position_divergence(probs),
    }


@torch.inference_mode()
def teacher_step_entropy(teacher: ARTeacher, x: SlateInputs, lists: Tensor) -> Tensor:
    """``[B, K]`` entropy (nats) of the teacher's step distributions along ``lists``; NaN on empty slots."""
    logp = prefix_masked_log_softmax(teacher(x, lists), x.pad_mask, lists)
    p = logp.exp()
    ent = -(torch.where(p > 0, p * logp, torch.zeros_like(p))).sum(-1)
    return ent.masked_fill(~position_valid(x.pad_mask, lists.shape[1]), float("nan"))


@torch.inference_mode()
def entropy_consistency_gap(teacher: ARTeacher, x: SlateInputs, n_samples: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Per request and slot: teacher greedy-path entropy and ``ECG_k = H(marginal of slot k over M
    ancestral samples) - mean conditional entropy`` (the dependence a NAR model cannot represent)."""
    gen = torch.Generator().manual_seed(seed)
    B = x.pad_mask.shape[0]
    xm = x.expand(n_samples)
    samples = teacher.decode(xm, temperature=1.0, generator=gen)  # [B*M, K]
    cond = teacher_step_entropy(teacher, xm, samples).reshape(B, n_samples, -1).numpy()
    ecg = metrics.entropy_consistency_gap(samples.reshape(B, n_samples, -1).numpy(), cond)
    greedy = teacher.greedy(x)
    return {"ecg": ecg, "greedy_entropy": teacher_step_entropy(teacher, x, greedy).numpy()}
