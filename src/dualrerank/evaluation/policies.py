"""Every evaluated policy as a function ``SlateInputs -> pages [B, K]`` (PAD_INDEX where fewer candidates)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from dualrerank.data.schema import PAD_INDEX
from dualrerank.models.components import SlateInputs
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.reranking import Reranker

PageFn = Callable[[SlateInputs], Tensor]


@dataclass(frozen=True)
class Policy:
    name: str
    pages: PageFn
    family: str  # "baseline" | "ar" | "nar" | "best_of_n"
    n_samples: int = 1


def top_k(scores: Tensor, pad_mask: Tensor, k: int) -> Tensor:
    """``[B, K]`` indices of the k best scores among non-padded candidates (PAD_INDEX beyond them)."""
    masked = scores.masked_fill(pad_mask, float("-inf"))
    k_eff = min(k, scores.shape[1])
    values, idx = masked.topk(k_eff, dim=1)
    idx = idx.masked_fill(torch.isinf(values), PAD_INDEX)
    if k_eff < k:
        idx = torch.cat([idx, idx.new_full((idx.shape[0], k - k_eff), PAD_INDEX)], dim=1)
    return idx


def upstream(k: int) -> Policy:
    """The upstream ranker's order: candidates by upstream rank."""
    return Policy("upstream", lambda x: top_k(-x.upstream_rank, x.pad_mask, k), "baseline")


def score_and_sort(net: PointwiseScorer, k: int) -> Policy:
    return Policy("score_and_sort", torch.inference_mode()(lambda x: top_k(net(x), x.pad_mask, k)), "baseline")


def generative(name: str, reranker: Reranker, n_samples: int = 1) -> Policy:
    family = "ar" if reranker.mode == "ar" else ("best_of_n" if n_samples > 1 else "nar")
    return Policy(name, lambda x: reranker.rerank(x, n_samples).pages, family, n_samples)


def run_policy(policy: Policy, tensors: dict[str, Tensor], batch: int = 256) -> Tensor:
    """Pages ``[R, K]`` of a policy over all requests, in batches."""
    n = len(tensors["pad_mask"])
    out = []
    for s in range(0, n, batch):
        x = SlateInputs.from_batch({k: v[s : s + batch] for k, v in tensors.items()})
        out.append(policy.pages(x))
    return torch.cat(out)
