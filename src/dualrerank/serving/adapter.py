"""Pure conversions between the service's JSON models and the networks' tensors (no BentoML here).

``prepare`` checks a parsed request against the served model and turns it into arrays; ``collate`` pads
a batch of prepared requests into one ``SlateInputs``; ``respond`` turns one row of a ``RerankResult``
back into a response. The candidate order of a request is its upstream order (rank 1..N); a request
without upstream scores gets the data contract's stand-in (``schema.stand_in_upstream_score``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dualrerank.data.schema import stand_in_upstream_score
from dualrerank.models.components import SlateInputs
from dualrerank.reranking import RerankResult
from dualrerank.serving.schemas import Metadata, RerankRequest, RerankResponse, RerankScores


class RequestError(ValueError):
    """A request the served model cannot take; ``field`` is the dotted path of the offending field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class ModelSpec:
    """What the served model accepts (``GET /metadata`` shows it with the model version)."""

    n_item_features: int
    n_context_features: int
    page_len: int
    viewport: int
    max_candidates: int
    default_n_samples: int
    max_n_samples: int

    @property
    def typical_candidates(self) -> int:
        """The request size the service warms up with and the exported networks are traced at."""
        return min(self.max_candidates, max(self.page_len, 50))

    def metadata(self, model_version: str, generator: str, batching: bool) -> Metadata:
        return Metadata.model_validate(
            {"model_version": model_version, "generator": generator, "batching": batching, **self.__dict__}
        )


@dataclass(frozen=True)
class Prepared:
    """One checked request as arrays: ``n`` candidates, ``F`` item features, ``Fc`` context features."""

    item_ids: list[str]
    features: np.ndarray  # [n, F] float32
    context: np.ndarray  # [Fc] float32
    upstream_score: np.ndarray  # [n] float32
    n_samples: int
    request_id: str | None = None  # keys the request's draws: the same request gets the same page


def prepare(request: RerankRequest, spec: ModelSpec) -> Prepared:
    """Check ``request`` against the served model; raise ``RequestError`` naming the first bad field."""
    cands = request.candidates
    if len(cands) > spec.max_candidates:
        raise RequestError("candidates", f"{len(cands)} candidates, more than the maximum {spec.max_candidates}")
    if len(request.context) != spec.n_context_features:
        raise RequestError("context", f"expected {spec.n_context_features} values, got {len(request.context)}")
    for i, c in enumerate(cands):
        if len(c.features) != spec.n_item_features:
            raise RequestError(
                f"candidates.{i}.features", f"expected {spec.n_item_features} values, got {len(c.features)}"
            )
    n_scored = sum(c.upstream_score is not None for c in cands)
    if 0 < n_scored < len(cands):
        i = next(i for i, c in enumerate(cands) if c.upstream_score is None)
        raise RequestError(f"candidates.{i}.upstream_score", "missing; give upstream_score for every candidate or none")
    n_samples = spec.default_n_samples if request.n_samples is None else request.n_samples
    if n_samples > spec.max_n_samples:
        raise RequestError("n_samples", f"{n_samples} is more than the maximum {spec.max_n_samples}")
    if n_scored:
        with np.errstate(over="ignore"):
            score = np.array([c.upstream_score for c in cands], dtype=np.float32)
    else:
        score = stand_in_upstream_score(np.arange(1, len(cands) + 1)).astype(np.float32)
    with np.errstate(over="ignore"):  # overflow to inf is caught just below
        features = np.array([c.features for c in cands], dtype=np.float32).reshape(len(cands), spec.n_item_features)
        context = np.array(request.context, dtype=np.float32)
    _check_float32("candidates.{}.features", features)
    _check_float32("context", context[None])
    _check_float32("candidates.{}.upstream_score", score[:, None])
    return Prepared([c.item_id for c in cands], features, context, score, n_samples, request.request_id)


def _check_float32(field: str, values: np.ndarray) -> None:
    """Finite JSON numbers beyond float32's range (|x| > 3.4e38) would reach the networks as inf."""
    bad = ~np.isfinite(values)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise RequestError(field.format(row), "a value is outside the float32 range (|x| > 3.4e38)")


def collate(batch: Sequence[Prepared]) -> tuple[SlateInputs, torch.Tensor]:
    """Pad ``B`` prepared requests to the longest: ``(SlateInputs [B, N, ...], n_samples [B])``."""
    B, N = len(batch), max(len(p.item_ids) for p in batch)
    F = batch[0].features.shape[1]
    features = np.zeros((B, N, F), dtype=np.float32)
    score = np.zeros((B, N), dtype=np.float32)
    rank = np.zeros((B, N), dtype=np.float32)
    pad = np.ones((B, N), dtype=bool)
    for b, p in enumerate(batch):
        n = len(p.item_ids)
        features[b, :n], score[b, :n], pad[b, :n] = p.features, p.upstream_score, False
        rank[b, :n] = np.arange(1, n + 1)
    x = SlateInputs(
        item_features=torch.from_numpy(features),
        context=torch.from_numpy(np.stack([p.context for p in batch])),
        upstream_score=torch.from_numpy(score),
        upstream_rank=torch.from_numpy(rank),
        pad_mask=torch.from_numpy(pad),
    )
    return x, torch.tensor([p.n_samples for p in batch], dtype=torch.long)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def respond(prepared: Prepared, result: RerankResult, row: int, model_version: str) -> RerankResponse:
    """The response for request ``row`` of a batched ``result``: item ids of the page, judge scores."""
    page = [i for i in result.pages[row].tolist() if i >= 0]
    judged = result.greedy_scores is not None and result.slot_scores is not None
    scores = RerankScores(
        page=_finite(float(result.scores[row])),
        greedy_page=_finite(float(result.greedy_scores[row])) if result.greedy_scores is not None else None,
        slots=result.slot_scores[row, : len(page)].tolist() if judged and result.slot_scores is not None else None,
        n_samples=int(result.n_samples[row]) if result.n_samples is not None else 1,
    )
    return RerankResponse(
        ranking=[prepared.item_ids[i] for i in page],
        scores=scores,
        model_version=model_version,
    )
