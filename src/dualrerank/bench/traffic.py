"""Request bodies for the load benchmark and the HTTP tests: realistic valid ones, and every kind of bad one.

Valid bodies are test-split requests (their first ``n`` candidates in upstream order, real features and
upstream scores). Malformed bodies break one rule each, cycling through ``MALFORMED`` kinds: every one
must get a 4xx that names the field, never a 5xx.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from typing import Any

import numpy as np

from dualrerank.data.slates import Slates

Body = dict[str, Any]
Malformed = tuple[str, bytes, str]  # (kind, raw body, content type)
JSON = "application/json"


def valid_bodies(slates: Slates, n_candidates: int, count: int) -> list[Body]:
    """``count`` requests with at least ``n_candidates`` candidates, cut to exactly ``n_candidates``."""
    n_real = (~slates.pad_mask).sum(1)
    rows = np.flatnonzero(n_real >= n_candidates)[:count]
    if len(rows) < count:
        raise ValueError(f"only {len(rows)} requests have >= {n_candidates} candidates; {count} needed")
    return [slate_body(slates, r, n_candidates) for r in rows]


def slate_body(slates: Slates, r: int, n_candidates: int | None = None) -> Body:
    """Request ``r`` of ``slates`` as a body: its first ``n_candidates`` candidates (all real ones if None)."""
    n = int((~slates.pad_mask[r]).sum()) if n_candidates is None else n_candidates
    return rerank_body(
        str(slates.request_id[r]), slates.item_id[r, :n], slates.item_features[r, :n], slates.upstream_score[r, :n],
        slates.context[r],
    )  # fmt: skip


def rerank_body(
    request_id: str, item_ids: np.ndarray, features: np.ndarray, upstream: np.ndarray, context: np.ndarray
) -> Body:
    """One ``POST /rerank`` body: candidates in upstream order with their features and upstream scores."""
    cands = [
        {"item_id": str(i), "features": f.tolist(), "upstream_score": float(u)}
        for i, f, u in zip(item_ids, features, upstream, strict=True)
    ]
    return {"request_id": request_id, "context": context.tolist(), "candidates": cands}


def _set(path: tuple[Any, ...], value: Any) -> Callable[[Body, random.Random], Body]:
    """A mutation that sets ``body[path]`` (``"i"`` = a random candidate, ``"j"`` = a random feature)."""

    def mutate(body: Body, rng: random.Random) -> Body:
        node: Any = body
        keys = list(path)
        for pos, key in enumerate(keys):
            if key in ("i", "j"):  # a random element of the list at this level
                keys[pos] = rng.randrange(len(node))
            if pos < len(keys) - 1:
                node = node[keys[pos]]
        if value is _DELETE:
            del node[keys[-1]]
        else:
            node[keys[-1]] = value(node[keys[-1]]) if callable(value) else value
        return body

    return mutate


_DELETE = object()


def _too_many(spec: Body) -> Callable[[Body, random.Random], Body]:
    def mutate(body: Body, rng: random.Random) -> Body:
        template = body["candidates"][0]
        n = spec["max_candidates"] + 1
        body["candidates"] = [{**template, "item_id": f"x{i}"} for i in range(n)]
        return body

    return mutate


def _duplicate(body: Body, rng: random.Random) -> Body:
    cands = body["candidates"]
    if len(cands) < 2:
        cands.append(copy.deepcopy(cands[0]))
    i, j = rng.sample(range(len(cands)), 2)
    cands[j]["item_id"] = cands[i]["item_id"]
    return body


def _partial_scores(body: Body, rng: random.Random) -> Body:
    """Some candidates with an upstream score and some without."""
    cands = body["candidates"]
    if len(cands) < 2:
        cands.append({**copy.deepcopy(cands[0]), "item_id": cands[0]["item_id"] + "-bis"})
    i = rng.randrange(len(cands))
    j = (i + 1) % len(cands)
    cands[i].pop("upstream_score", None)
    cands[j]["upstream_score"] = 0.5
    return body


def mutations(spec: Body) -> dict[str, Callable[[Body, random.Random], Body]]:
    """Every kind of bad JSON body, given the served model's ``/metadata``."""
    return {
        "missing_context": _set(("context",), _DELETE),
        "missing_candidates": _set(("candidates",), _DELETE),
        "missing_item_id": _set(("candidates", "i", "item_id"), _DELETE),
        "missing_features": _set(("candidates", "i", "features"), _DELETE),
        "extra_field": _set(("priority",), 1),
        "extra_candidate_field": _set(("candidates", "i", "rank"), 3),
        "string_feature": _set(("candidates", "i", "features", "j"), "0.5"),
        "bool_feature": _set(("candidates", "i", "features", "j"), True),
        "string_context": _set(("context",), "user-17"),
        "numeric_item_id": _set(("candidates", "i", "item_id"), 17),
        "empty_item_id": _set(("candidates", "i", "item_id"), ""),
        "null_candidates": _set(("candidates",), None),
        "object_candidates": _set(("candidates",), lambda c: c[0]),
        "empty_candidates": _set(("candidates",), []),
        "too_many_candidates": _too_many(spec),
        "short_features": _set(("candidates", "i", "features"), lambda f: f[:-1]),
        "long_features": _set(("candidates", "i", "features"), lambda f: [*f, 0.0]),
        "wrong_context_width": _set(("context",), lambda c: [*c, 0.0]),
        "nan_feature": _set(("candidates", "i", "features", "j"), float("nan")),
        "inf_feature": _set(("candidates", "i", "features", "j"), float("inf")),
        "nan_context": _set(("context",), lambda c: [float("-inf"), *c[1:]]),
        "nan_upstream_score": _set(("candidates", "i", "upstream_score"), float("nan")),
        "partial_upstream_score": _partial_scores,
        "duplicate_item_ids": _duplicate,
        "n_samples_zero": _set(("n_samples",), 0),
        "n_samples_negative": _set(("n_samples",), -3),
        "n_samples_over_max": _set(("n_samples",), spec["max_n_samples"] + 1),
        "n_samples_huge": _set(("n_samples",), 10**30),
        "n_samples_float": _set(("n_samples",), 2.5),
        "n_samples_bool": _set(("n_samples",), True),
    }


def malformed_bodies(valid: list[Body], spec: Body, count: int, max_body_bytes: int, seed: int = 0) -> list[Malformed]:
    """``count`` bad requests cycling through all kinds: the JSON mutations, then raw-body breakages."""
    rng = random.Random(seed)
    kinds = mutations(spec)
    raw: dict[str, Callable[[bytes], tuple[bytes, str]]] = {
        "invalid_json": lambda b: (b[: len(b) // 2], JSON),
        "not_an_object": lambda b: (b"[" + b + b"]", JSON),
        "empty_body_text": lambda b: (b"", "text/plain"),
        "wrong_content_type": lambda b: (b, "text/plain"),
        "oversized_body": lambda b: (b[:-1] + b" " * (2 * max_body_bytes) + b"}", JSON),
    }
    names = [*kinds, *raw]
    out: list[Malformed] = []
    for n in range(count):
        name = names[n % len(names)]
        body = copy.deepcopy(valid[rng.randrange(len(valid))])
        if name in kinds:
            out.append((name, json.dumps(kinds[name](body, rng)).encode(), JSON))
        else:
            out.append((name, *raw[name](json.dumps(body).encode())))
    return out
