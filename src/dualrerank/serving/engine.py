"""Request -> checked arrays -> one batched forward pass -> response: everything the service does,
without BentoML, so tests and the service share one code path."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dualrerank.reranking import Reranker
from dualrerank.serving.adapter import ModelSpec, Prepared, collate, prepare, respond
from dualrerank.serving.batching import MicroBatcher
from dualrerank.serving.schemas import Metadata, RerankRequest, RerankResponse


class RerankEngine:
    """A loaded reranker behind a micro-batcher. ``batching=False`` runs one request per forward pass."""

    def __init__(
        self,
        reranker: Reranker,
        spec: ModelSpec,
        model_version: str,
        batching: bool = True,
        max_batch_size: int = 16,
        max_wait_ms: float = 0.0,
    ) -> None:
        self.reranker, self.spec, self.model_version = reranker, spec, model_version
        self.metadata: Metadata = spec.metadata(model_version, reranker.mode, batching)
        self.batcher = MicroBatcher(self.rerank_batch, max_batch_size if batching else 1, max_wait_ms)
        self.warm_up()

    def rerank_batch(self, batch: Sequence[Prepared]) -> list[RerankResponse]:
        """One forward pass (generator, sampler, judge) for all of ``batch``; one response per request."""
        x, n_samples = collate(batch)
        result = self.reranker.rerank(x, n_samples, [p.request_id for p in batch])
        return [respond(p, result, row, self.model_version) for row, p in enumerate(batch)]

    async def rerank(self, request: RerankRequest) -> RerankResponse:
        """Check ``request`` (``RequestError`` on a bad field), then rerank it in the next batch."""
        return await self.batcher.submit(prepare(request, self.spec))

    def warm_up(self) -> None:
        """Run a full-size request once at start-up so the first client does not pay one-off costs."""
        n = self.spec.typical_candidates
        dummy = Prepared(
            item_ids=[str(i) for i in range(n)],
            features=np.zeros((n, self.spec.n_item_features), dtype=np.float32),
            context=np.zeros(self.spec.n_context_features, dtype=np.float32),
            upstream_score=np.zeros(n, dtype=np.float32),
            n_samples=self.spec.default_n_samples,
        )
        self.rerank_batch([dummy])

    def close(self) -> None:
        self.batcher.close()
