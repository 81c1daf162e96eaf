"""Benchmark tools, never imported by the production code: the closed-loop HTTP load generator, the
malformed-request corpus, the local ``bentoml serve`` launcher and the serving benchmark built on them."""
