"""Request and response models of the service (the service contract in docs/architecture.md).

These models check everything that does not depend on the served model: required and unknown fields
(``extra="forbid"``), types (strict: no numbers in strings, no booleans as numbers), finite numbers, an
empty candidate list, duplicate item ids, ``n_samples >= 1`` and size caps that keep a single request
cheap to parse. Checks against the served model (feature widths, ``max_candidates``, ``max_n_samples``)
live in ``serving.adapter``. Every failure becomes a 400 whose message names the field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Caps independent of the model: generous, only there so one request cannot make parsing expensive.
MAX_ID_LENGTH = 256
MAX_LIST_LENGTH = 4096

FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]
Floats = Annotated[list[FiniteFloat], Field(max_length=MAX_LIST_LENGTH)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Candidate(_Strict):
    item_id: Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
    features: Floats = Field(description="item features, in the order of the model's feature columns")
    upstream_score: FiniteFloat | None = Field(
        default=None, description="upstream relevance; when no candidate has one, a stand-in from the order"
    )


class RerankRequest(_Strict):
    """One reranking request. Candidate order is the upstream order: it defines the upstream rank 1..N."""

    request_id: Annotated[str, Field(max_length=MAX_ID_LENGTH)] | None = None
    context: Floats = Field(description="context (user/query) features; [] when the model has none")
    candidates: Annotated[list[Candidate], Field(min_length=1, max_length=MAX_LIST_LENGTH)]
    n_samples: Annotated[int, Field(ge=1, le=MAX_LIST_LENGTH)] | None = Field(
        default=None, description="Best-of-N size (lists compared, greedy included); default from /metadata"
    )

    @field_validator("candidates")
    @classmethod
    def _unique_ids(cls, candidates: list[Candidate]) -> list[Candidate]:
        seen: dict[str, int] = {}
        for i, c in enumerate(candidates):
            if c.item_id in seen:
                raise ValueError(f"duplicate item_id {c.item_id!r} (candidates {seen[c.item_id]} and {i})")
            seen[c.item_id] = i
        return candidates


class RerankScores(BaseModel):
    """What the judge thought of the answer. All ``None`` when nothing was judged (AR greedy, n_samples=1)."""

    page: float | None = Field(description="judge score (evaluator page utility + prior rules) of the returned page")
    greedy_page: float | None = Field(description="judge score of the greedy list; page - greedy_page = Best-of-N gain")
    slots: list[float] | None = Field(
        description="per-slot part of the evaluator's page utility, aligned with `ranking`"
    )
    n_samples: int = Field(description="lists compared (1 = greedy list or AR teacher)")


class RerankResponse(BaseModel):
    ranking: list[str] = Field(description="item ids of the page, best slot first: K of them, or all if fewer")
    scores: RerankScores
    model_version: str


class Metadata(BaseModel):
    model_version: str
    n_item_features: int
    n_context_features: int
    page_len: int
    viewport: int
    max_candidates: int
    default_n_samples: int
    max_n_samples: int
    generator: Literal["nar", "ar"]
    batching: bool


class ErrorResponse(BaseModel):
    """Body of every 4xx: ``error`` names the field(s) at fault."""

    error: str
    detail: str | None = None
