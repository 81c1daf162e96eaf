"""Teacher-forced list losses for the AR teacher (and the student's optional ground-truth term).

docs/method.md [ours]: ``L_teacher = L_MLE + λ_BPR · L_BPR`` on a target list y (utility-sorted logged page by
default). ``step_logits[b, k]`` are the decoder's pointer scores at step k *given* ``target[b, :k]`` (teacher
forcing); for a NAR student they are its item-to-position logits. Shapes: ``step_logits: Tensor[B, K, N]``,
``target: LongTensor[B, K]`` with PAD_INDEX at empty positions, ``pad_mask: BoolTensor[B, N]`` (True = padded).
Every loss is a scalar mean over valid (b, k) positions (``target != PAD_INDEX``), 0 when there are none.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from dualrerank.data.schema import PAD_INDEX
from dualrerank.sampling import available_mask, prefix_masked_log_softmax

NEGATIVES = ("available", "below")


def _safe_mean(total: Tensor, count: Tensor) -> Tensor:
    """``total / count``, or 0 (still in the graph, finite gradients) when ``count == 0``."""
    return total / torch.where(count == 0, torch.ones_like(count), count)


def mle_loss(step_logits: Tensor, target: Tensor, pad_mask: Tensor, weights: Tensor | None = None) -> Tensor:
    """Teacher-forced list MLE (Seq2Slate; docs/method.md): ``-log softmax_{avail(y_<k)}(s_k)[y_k]``.

    Items of ``target[b, :k]`` and padded items are masked out of step k's softmax, so they get no mass and
    no gradient. :param weights: optional ``Tensor[B]`` of non-negative per-request weights (reward-weighted MLE,
    docs/method.md); the loss is then the weighted mean ``Σ w_b nll_bk / Σ w_b`` over valid (b, k).
    :return: scalar tensor.
    """
    logp = prefix_masked_log_softmax(step_logits, pad_mask, target)  # [B, K, N]
    chosen = logp.gather(-1, target.clamp_min(0).unsqueeze(-1)).squeeze(-1)  # [B, K]
    valid = target != PAD_INDEX  # [B, K]
    w = valid.to(logp.dtype)
    if weights is not None:
        w = w * weights.to(logp.dtype).unsqueeze(-1)
    nll = torch.where(valid, -chosen, torch.zeros_like(chosen))
    return _safe_mean((w * nll).sum(), w.sum())


def bpr_loss(step_logits: Tensor, target: Tensor, pad_mask: Tensor, negatives: str = "available") -> Tensor:
    """Pairwise BPR on the step scores (docs/method.md): ``mean_j -log σ(s_k(y_k) - s_k(j))``, then mean over (b, k).

    :param negatives: ``"available"``: every item available at step k other than y_k; ``"below"``: only the target
        items after position k (``target[b, k+1:]``, lower observed reward in a utility-sorted target).
        Positions with no negative (e.g. the last valid one under ``"below"``) are left out of the mean.
    :return: scalar tensor.
    """
    if negatives not in NEGATIVES:
        raise ValueError(f"unknown negatives {negatives!r}; valid: {', '.join(NEGATIVES)}")
    N = step_logits.shape[-1]
    valid = target != PAD_INDEX  # [B, K]
    if negatives == "available":
        neg = available_mask(pad_mask, target)  # [B, K, N]
        neg = neg & (torch.arange(N, device=target.device) != target.unsqueeze(-1))
    else:
        onehot = F.one_hot(target.clamp_min(0), N) * valid.unsqueeze(-1)  # [B, K, N]
        at_or_after = onehot.flip(1).cumsum(1).flip(1)  # [B, K, N]: times item i occurs in target[b, k:]
        neg = F.pad(at_or_after[:, 1:], (0, 0, 0, 1)) > 0  # i occurs in target[b, k+1:]
    neg = neg & valid.unsqueeze(-1)
    s_pos = step_logits.gather(-1, target.clamp_min(0).unsqueeze(-1))  # [B, K, 1]
    diff = torch.where(neg, s_pos - step_logits, torch.zeros_like(step_logits))  # masked entries never read
    terms = torch.where(neg, -F.logsigmoid(diff), torch.zeros_like(diff))
    n_neg = neg.sum(-1)  # [B, K]
    per_pos = _safe_mean(terms.sum(-1), n_neg.to(terms.dtype))  # [B, K], 0 where there is no negative
    return _safe_mean(per_pos.sum(), (n_neg > 0).sum().to(terms.dtype))
