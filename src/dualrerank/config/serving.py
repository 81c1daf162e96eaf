"""``package`` section: what goes into the BentoML store, how the service serves it, and the load benchmark.

The stage bakes the serving settings into the BentoML model's metadata, so a served model carries the
settings it was packaged with (``params.yaml`` stays the one source; the service never reads it).
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import model_validator

from dualrerank.config.base import Section, check


class BenchConfig(Section):
    """``dualrerank bench-serve``: a fixed mix of valid requests, then malformed ones (docs/method.md)."""

    concurrency: tuple[int, ...]  # client concurrency levels
    requests: int  # timed requests per (server, concurrency level)
    warmup: int  # untimed requests per server before timing
    n_candidates: int  # candidates per request, taken from test-split slates
    distinct_requests: int  # distinct test requests cycled through
    malformed: int  # malformed requests sent to each server after timing
    startup_timeout_s: float

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(len(self.concurrency) >= 1 and all(c >= 1 for c in self.concurrency), "concurrency levels must be >= 1")
        check(self.requests >= 20 and self.warmup >= 0, "requests must be >= 20, warmup >= 0")
        check(self.n_candidates >= 1 and self.distinct_requests >= 1, "n_candidates, distinct_requests must be >= 1")
        return self


class PackageConfig(Section):
    generator: Literal["nar", "ar"]  # nar: Best-of-N NAR student; ar: greedy AR teacher (comparison)
    source: Literal["champion", "local"]  # champion: the registry's champion; local: data/models
    max_n_samples: int
    temperature: float  # Gumbel-Max sampling temperature
    max_candidates: int  # more candidates in a request is a 400
    batching: bool  # concurrent requests share one forward pass
    max_batch_size: int
    max_wait_ms: float  # extra wait for a batch to fill (0: a lone request never waits)
    num_threads: int  # torch intra-op threads of the serving process
    backend: Literal["torch", "onnx"]  # onnx: the NAR student and the judge's evaluator run on ONNX Runtime
    max_body_kib: int  # larger request bodies get a 413
    seed: int  # sampling generator seed (reproducible service)
    build: bool  # run `bentoml build` after importing the model (needs bentofile.yaml at the root)
    bench: BenchConfig

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.max_n_samples >= 1, "max_n_samples must be >= 1")
        check(self.temperature > 0, "temperature must be > 0")
        check(self.max_candidates >= 1, "max_candidates must be >= 1")
        check(self.max_batch_size >= 1 and self.max_wait_ms >= 0, "max_batch_size must be >= 1, max_wait_ms >= 0")
        check(self.num_threads >= 1 and self.max_body_kib >= 1, "num_threads and max_body_kib must be >= 1")
        return self
