"""Policy-gradient objectives on G sampled lists per request: LDRO and its GRPO baseline (docs/method.md).

Shapes: ``B`` requests, ``G`` lists per request, ``K`` positions, ``N`` candidates, ``R`` reward components.
``logp`` / ``logp_old``: ``[B, G, K]`` per-position log-probabilities of the sampled lists under the masked
sequential policy (``sampling.sequence_log_prob``; 0 at empty positions), ``valid``: ``[B, G, K]`` True where the
list holds an item. Every loss sums its per-position terms over K and averages over the ``B·G`` lists, so with
uniform slot weights and ratio 1 its gradient is ``-mean_lists A · ∇ log π(list)``, the policy gradient.

**Streaming Double-Decoupling** [ours, GDPO-inspired] (``decoupled_advantages``): centre each component within
its request group; divide it by a streaming (EMA) scale per component instead of the group's own std, so a
near-constant group does not blow up and a drifting component scale does not swing the update; weight, sum,
optionally renormalise over the batch. ``weight_units="reward"`` (default) reads the weights in reward units
(the business objective): each is multiplied by its component's scale at calibration (``ref_scale``, the first
EMA value), so undrifted it reduces to the centred weighted reward sum; under drift the EMA scale absorbs the
change. ``weight_units="normalised"`` applies the weights to the standardised components directly (GDPO).
**GRPO** (``grpo_advantages``, DeepSeekMath): scalar summed reward, per-group ``(R - mean) / (std + eps)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dualrerank.losses.distillation import categorical_kl
from dualrerank.sampling import prefix_masked_log_softmax

RATIO_LEVELS = ("position", "sequence")
WEIGHT_UNITS = ("reward", "normalised")


def group_centre(rewards: Tensor) -> Tensor:
    """``[B, G, R]``: each component minus its mean over the request's group (decoupling 1)."""
    return rewards - rewards.mean(1, keepdim=True)


def residual_scale(centred: Tensor) -> Tensor:
    """``[R]`` within-group residual std of each component over the batch: ``sqrt(mean_{b,g} c²)``."""
    return centred.pow(2).mean((0, 1)).sqrt()


def ema_update(scale: Tensor, ready: Tensor, observed: Tensor, eta: float) -> tuple[Tensor, Tensor]:
    """One streaming step of the per-component scale: ``s ← (1 - η) s + η · observed``.

    A component's EMA starts at its first non-zero observation (``ready [R]`` False until then), so a component
    that is constant at the start of the stream does not get a near-zero scale. Returns ``(scale, ready)``.
    """
    seen = observed > 0
    started = torch.where(ready, (1 - eta) * scale + eta * observed, observed)
    return torch.where(ready | seen, started, scale), ready | seen


def decoupled_advantages(
    rewards: Tensor,
    weights: Tensor,
    scale: Tensor,
    ref_scale: Tensor | None = None,
    batch_renorm: bool = True,
    eps: float = 1e-6,
) -> Tensor:
    """LDRO advantages ``[B, G]`` (Streaming Double-Decoupling, module docstring).

    ``A = Σ_d w_d · ref_d · (r_d - mean_G r_d) / (s_d + eps)``; ``ref_scale=None`` means ``ref_d = 1``
    (weights in normalised units). ``batch_renorm`` then standardises ``A`` over the whole batch (a constant
    batch stays 0). :param rewards: ``[B, G, R]``; :param weights, scale, ref_scale: ``[R]``.
    """
    w = weights if ref_scale is None else weights * ref_scale
    adv = (group_centre(rewards) / (scale + eps) * w).sum(-1)  # [B, G]
    if batch_renorm:
        adv = (adv - adv.mean()) / (adv.std(unbiased=False) + eps)
    return adv


def grpo_advantages(rewards: Tensor, weights: Tensor, eps: float = 1e-6) -> Tensor:
    """GRPO advantages ``[B, G]``: ``R = Σ_d w_d r_d``, ``(R - mean_G R) / (std_G R + eps)`` (population std,
    so a constant group gives 0, never NaN)."""
    total = (rewards * weights).sum(-1)
    return (total - total.mean(1, keepdim=True)) / (total.std(1, unbiased=False, keepdim=True) + eps)


def clipped_surrogate(
    logp: Tensor,
    logp_old: Tensor,
    advantages: Tensor,
    valid: Tensor,
    slot_weights: Tensor | None = None,
    clip_eps: float = 0.2,
    level: str = "position",
) -> Tensor:
    """PPO clipped surrogate, to minimise: ``-mean_lists Σ_k w_k min(ρ_k A, clip(ρ_k, 1 ± ε) A)``.

    ``level="position"``: per-position ratios ``ρ_k = π(σ_k | σ_<k) / π_old(σ_k | σ_<k)`` (LDRO; rank weights
    ``slot_weights [K]``, ones if None). ``level="sequence"``: one ratio per list ``Π_k ρ_k`` (GRPO option; slot
    weights must be None). On-policy (``logp_old = logp.detach()``) every ratio is 1 and clipping is inactive.
    """
    if level not in RATIO_LEVELS:
        raise ValueError(f"unknown ratio level {level!r}; valid: {', '.join(RATIO_LEVELS)}")
    log_ratio = torch.where(valid, logp - logp_old, torch.zeros_like(logp))  # [B, G, K]
    if level == "sequence":
        if slot_weights is not None:
            raise ValueError("sequence-level ratios take no slot weights")
        ratio = log_ratio.sum(-1).exp()  # [B, G]
        surr = torch.minimum(ratio * advantages, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantages)
        return -surr.mean()
    ratio = log_ratio.exp()
    a = advantages.unsqueeze(-1)
    surr = torch.minimum(ratio * a, ratio.clamp(1 - clip_eps, 1 + clip_eps) * a)  # [B, G, K]
    w = valid.to(surr.dtype) if slot_weights is None else valid * slot_weights.to(surr.dtype)
    return -(w * surr).sum(-1).mean()


def _prefix_log_probs(logits: Tensor, pad_mask: Tensor, pages: Tensor, temperature: float) -> Tensor:
    """``[B, G, K, N]`` prefix-masked log-softmax along ``pages [B, G, K]`` of shared logits ``[B, K, N]`` or
    per-list logits ``[B, G, K, N]`` (e.g. the AR teacher run along each sampled list)."""
    if logits.dim() == 3:
        return prefix_masked_log_softmax(logits, pad_mask, pages, temperature)
    B, G, K, N = logits.shape
    flat = prefix_masked_log_softmax(
        logits.reshape(B * G, K, N), pad_mask.repeat_interleave(G, 0), pages.reshape(B * G, K), temperature
    )
    return flat.reshape(B, G, K, N)


def exact_kl(logits: Tensor, ref_logits: Tensor, pad_mask: Tensor, pages: Tensor, temperature: float = 1.0) -> Tensor:
    """Exact categorical ``KL(π_θ(· | σ_<k) ‖ π_ref(· | σ_<k))`` at every position of the sampled lists: ``[B, G, K]``
    (0 at empty positions). :param logits: the policy's ``[B, K, N]``; :param ref_logits: ``[B, K, N]`` (a frozen
    NAR reference) or ``[B, G, K, N]`` (the teacher along each list's prefix)."""
    logp = _prefix_log_probs(logits, pad_mask, pages, temperature)
    logr = _prefix_log_probs(ref_logits.detach(), pad_mask, pages, temperature)
    return categorical_kl(logp, logr)  # all -inf rows (empty positions) give 0


def k3_kl(logp: Tensor, logp_ref: Tensor, valid: Tensor) -> Tensor:
    """GRPO's non-negative KL estimator per sampled position, ``π_ref/π - log(π_ref/π) - 1``: ``[B, G, K]``."""
    log_ratio = torch.where(valid, logp_ref.detach() - logp, torch.zeros_like(logp))
    return log_ratio.exp() - log_ratio - 1


def per_list_sum(terms: Tensor, valid: Tensor) -> Tensor:
    """Scalar ``mean_lists Σ_k terms`` over valid positions (the convention of every term here)."""
    return torch.where(valid, terms, torch.zeros_like(terms)).sum(-1).mean()
