"""The BentoML service ``Reranker`` (docs/architecture.md, service contract): thin glue around ``RerankEngine``.

``POST /rerank`` takes one request per body and reranks it with the packaged Best-of-N NAR reranker
(or the AR teacher when started with ``DUALRERANK_GENERATOR=ar``); ``GET /metadata`` describes what the
served model accepts. The model is the latest ``dualrerank-reranker`` in the BentoML store (or
``DUALRERANK_MODEL=name:version``), loaded once when the worker starts. Concurrent requests share one
forward pass through the engine's micro-batcher (``serving.batching``). Every bad input is a 4xx whose
``error`` names the field (``serving.http``).

Run from the repository root: ``bentoml serve`` (bentofile.yaml points here) or ``make serve``.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import attrs
import bentoml
from bentoml.exceptions import InvalidArgument
from fastapi import FastAPI

from dualrerank.serving.adapter import RequestError
from dualrerank.serving.http import RequestGuard
from dualrerank.serving.schemas import Metadata, RerankRequest, RerankResponse
from dualrerank.serving.store import MODEL_NAME, load_engine, settings

MODEL_TAG = os.environ.get("DUALRERANK_MODEL", f"{MODEL_NAME}:latest")
PACKAGED = bentoml.models.BentoModel(MODEL_TAG)


class _Service(bentoml.Service):  # type: ignore[type-arg]
    """BentoML's service with its OpenAPI document completed: the 413 and 415 that ``RequestGuard``
    answers on API routes are documented with the same error body as the 400."""

    @property
    def openapi_spec(self):  # type: ignore[no-untyped-def]
        spec = super().openapi_spec
        for path in spec.paths.values():
            responses = path.post.get("responses", {}) if isinstance(path.post, dict) else {}
            if 400 in responses:
                responses[413] = attrs.evolve(responses[400], description="Body larger than the size limit")
                responses[415] = attrs.evolve(responses[400], description="Body is not application/json")
        return spec


metadata_app = FastAPI(title="Reranker metadata", openapi_url=None, docs_url=None, redoc_url=None)


@bentoml.asgi_app(metadata_app)
# One worker process (the micro-batcher batches within it); a per-request access log line and Prometheus
# metrics are off because they cost latency on every request: turn them on with BentoML's own config,
# e.g. BENTOML_CONFIG_OPTIONS="services.Reranker.metrics.enabled=true".
@bentoml.service(
    name="Reranker",
    workers=1,
    traffic={"timeout": 30},
    metrics={"enabled": False},
    logging={"access": {"enabled": False}},
    service_class=_Service,
)
class Reranker:
    packaged = PACKAGED

    def __init__(self) -> None:
        stored = self.packaged
        self.engine = load_engine(Path(stored.path), stored.info.metadata, str(stored.tag), os.environ)
        # Move everything loaded so far (torch, BentoML, the model) out of the cyclic garbage collector's
        # reach: otherwise an occasional full collection walks it all and stalls in-flight requests for
        # ~150 ms (measured: concurrency-8 p99 ~200 ms before, ~50 ms after; docs/serving.md).
        gc.collect()
        gc.freeze()

    @bentoml.api(route="/rerank")
    async def rerank(self, request: RerankRequest, /) -> RerankResponse:
        """Rerank the candidates into a page of K items (all of them if fewer), best slot first."""
        try:
            return await self.engine.rerank(request)
        except RequestError as exc:
            raise InvalidArgument(str(exc)) from None

    @metadata_app.get("/metadata")
    def metadata(self) -> Metadata:
        """What the served model accepts, and its version."""
        return self.engine.metadata


def _body_limit() -> int:
    """The packaged body limit; a clear error here if nothing has been packaged yet."""
    stored = PACKAGED.stored
    if stored is None:
        home = os.environ.get("BENTOML_HOME", "~/bentoml")
        raise RuntimeError(f"no model {MODEL_TAG} in the BentoML store at {home}; run `dualrerank run package` first")
    return settings(stored.info.metadata, os.environ).max_body_kib * 1024


Reranker.add_asgi_middleware(RequestGuard, max_body_bytes=_body_limit())  # type: ignore[attr-defined]
