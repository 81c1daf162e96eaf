"""Sequential Knowledge Distillation from the AR teacher to the NAR student (docs/method.md; [ours] reconstruction).

The caller runs the frozen teacher along its greedy ``trajectory`` ŷ and passes its step logits
``teacher_logits[b, k]`` (computed given ``ŷ[b, :k]``). Both distributions are prefix-masked with ``ŷ[:, :k]`` and
padding, so the student is trained on exactly the distribution that masked sequential decoding serves.
Shapes: ``student_logits, teacher_logits: Tensor[B, K, N]``, ``trajectory: LongTensor[B, K]`` (PAD_INDEX at empty
positions), ``pad_mask: BoolTensor[B, N]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dualrerank.data.schema import PAD_INDEX
from dualrerank.losses.ranking import _safe_mean, mle_loss
from dualrerank.sampling import prefix_masked_log_softmax

DIRECTIONS = ("forward", "reverse")


def categorical_kl(logp: Tensor, logq: Tensor) -> Tensor:
    """``KL(p ‖ q)`` over the last axis from log-probabilities; ``-inf`` entries (unavailable items) count as 0."""
    finite = torch.isfinite(logp)  # the same availability mask for p and q
    zero = torch.zeros_like(logp)
    logp, logq = torch.where(finite, logp, zero), torch.where(finite, logq, zero)  # no (-inf) - (-inf) anywhere
    return torch.where(finite, logp.exp() * (logp - logq), zero).sum(-1)


def sequential_kd_loss(
    student_logits: Tensor,
    teacher_logits: Tensor,
    trajectory: Tensor,
    pad_mask: Tensor,
    temperature: float = 1.0,
    position_weights: Tensor | None = None,
    direction: str = "forward",
) -> Tensor:
    """Step-wise soft KD along the teacher trajectory (docs/method.md):

        L_KD = τ² · Σ_{b, valid k} ω_k KL(p_T^k ‖ q_S^k) / Σ_{b, valid k} ω_k

    with ``p_T^k = softmax_{avail_k}(teacher_logits[b, k] / τ)``, ``q_S^k`` the same for the student and
    ``avail_k`` = not padded and not in ``trajectory[b, :k]``. ``direction="reverse"`` uses ``KL(q_S ‖ p_T)``
    (mode-seeking ablation). The τ² factor keeps gradient scale comparable across τ (Hinton et al., 2015).
    The teacher is detached. :param position_weights: ``ω: Tensor[K]`` (e.g. ``rank_decay_weights``) or None (ones).
    :return: scalar tensor, 0 for identical teacher and student logits.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown KD direction {direction!r}; valid: {', '.join(DIRECTIONS)}")
    logp_t = prefix_masked_log_softmax(teacher_logits.detach(), pad_mask, trajectory, temperature)  # [B, K, N]
    logq_s = prefix_masked_log_softmax(student_logits, pad_mask, trajectory, temperature)  # [B, K, N]
    kl = categorical_kl(logp_t, logq_s) if direction == "forward" else categorical_kl(logq_s, logp_t)  # [B, K]
    valid = trajectory != PAD_INDEX  # [B, K]
    w = valid.to(kl.dtype)
    if position_weights is not None:
        w = w * position_weights.to(kl.dtype)
    kl = torch.where(valid, kl, torch.zeros_like(kl))
    return temperature**2 * _safe_mean((w * kl).sum(), w.sum())


def hard_kd_loss(student_logits: Tensor, trajectory: Tensor, pad_mask: Tensor) -> Tensor:
    """Sequence-level hard KD (Kim & Rush, 2016; docs/method.md): ``mle_loss`` on the teacher's decoded list."""
    return mle_loss(student_logits, trajectory, pad_mask)
