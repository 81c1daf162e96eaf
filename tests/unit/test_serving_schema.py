"""Request validation, property-based: every body is either a valid request or a clear error naming a field.

Covers the request models (``serving.schemas``), the model-dependent checks (``serving.adapter``), the
4xx body shape (``serving.http``) and padding of batched requests (``adapter.collate``).
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from dualrerank.bench.traffic import malformed_bodies, mutations
from dualrerank.data.schema import stand_in_upstream_score
from dualrerank.serving.adapter import ModelSpec, RequestError, collate, prepare
from dualrerank.serving.http import error_body
from dualrerank.serving.schemas import RerankRequest

SPEC = ModelSpec(
    n_item_features=3,
    n_context_features=2,
    page_len=4,
    viewport=2,
    max_candidates=12,
    default_n_samples=4,
    max_n_samples=8,
)
SPEC_JSON = SPEC.__dict__
FINITE = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def valid_bodies(draw: st.DrawFn, scored: bool | None = None) -> dict:
    n = draw(st.integers(1, SPEC.max_candidates))
    ids = draw(st.lists(st.text(min_size=1, max_size=8), min_size=n, max_size=n, unique=True))
    with_scores = draw(st.booleans()) if scored is None else scored
    cands = []
    for item_id in ids:
        c = {"item_id": item_id, "features": draw(st.lists(FINITE, min_size=3, max_size=3))}
        if with_scores:
            c["upstream_score"] = draw(FINITE)
        cands.append(c)
    body = {"context": draw(st.lists(FINITE, min_size=2, max_size=2)), "candidates": cands}
    if draw(st.booleans()):
        body["n_samples"] = draw(st.integers(1, SPEC.max_n_samples))
    if draw(st.booleans()):
        body["request_id"] = draw(st.text(max_size=20))
    return body


def check(raw: bytes):
    """Parse and check like the service does: a ``Prepared`` or one of the two request errors."""
    return prepare(RerankRequest.model_validate_json(raw), SPEC)


@SETTINGS
@given(valid_bodies())
def test_valid_requests_become_arrays_in_request_order(body):
    p = check(json.dumps(body).encode())
    n = len(body["candidates"])
    assert p.item_ids == [c["item_id"] for c in body["candidates"]]
    assert p.features.shape == (n, 3) and p.context.shape == (2,)
    assert p.n_samples == body.get("n_samples", SPEC.default_n_samples)
    if "upstream_score" in body["candidates"][0]:
        want = [c["upstream_score"] for c in body["candidates"]]
        np.testing.assert_allclose(p.upstream_score, want, rtol=1e-6, atol=1e-37)
    else:  # the data contract's stand-in: decreasing with the upstream order
        np.testing.assert_allclose(p.upstream_score, stand_in_upstream_score(np.arange(1, n + 1)), rtol=1e-6)
        assert np.all(np.diff(p.upstream_score) < 0)


@SETTINGS
@given(valid_bodies(), st.sampled_from(sorted(mutations(SPEC_JSON))), st.integers(0, 2**16))
def test_every_malformed_kind_is_a_request_error_naming_a_field(body, kind, seed):
    bad = mutations(SPEC_JSON)[kind](body, random.Random(seed))
    with pytest.raises((ValidationError, RequestError)) as info:
        check(json.dumps(bad).encode())
    fields = ("context", "candidates", "n_samples", "priority", "body")
    message = error_body(400, _bentoml_style(info.value))["error"]
    assert any(f in message for f in fields), message


@SETTINGS
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | FINITE | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=20,
    )
)
def test_arbitrary_json_is_valid_or_a_clear_error(value):
    try:
        check(json.dumps(value).encode())
    except (ValidationError, RequestError) as exc:
        assert error_body(400, _bentoml_style(exc))["error"]


def test_model_dependent_checks_name_the_field():
    cands = [{"item_id": f"i{k}", "features": [0.0, 1.0, 2.0]} for k in range(3)]
    cases = {
        "context: expected 2 values, got 3": {"context": [0.0, 0.0, 0.0], "candidates": cands},
        "candidates.1.features: expected 3 values, got 2": {
            "context": [0.0, 0.0],
            "candidates": [cands[0], {"item_id": "x", "features": [1.0, 2.0]}],
        },
        "candidates: 13 candidates, more than the maximum 12": {
            "context": [0.0, 0.0],
            "candidates": [{**cands[0], "item_id": str(k)} for k in range(13)],
        },
        "n_samples: 9 is more than the maximum 8": {"context": [0.0, 0.0], "candidates": cands, "n_samples": 9},
        "candidates.1.features: a value is outside the float32 range": {
            "context": [0.0, 0.0],
            "candidates": [cands[0], {"item_id": "x", "features": [1.0, 1e39, 0.0]}],
        },
        "candidates.0.upstream_score: missing": {
            "context": [0.0, 0.0],
            "candidates": [cands[0], {**cands[1], "upstream_score": 0.5}],
        },
    }
    for message, body in cases.items():
        with pytest.raises(RequestError, match=message.replace(".", r"\.")):
            check(json.dumps(body).encode())


def test_structural_errors_name_every_bad_field():
    body = {"context": [0.0, "x"], "candidates": [{"item_id": "a", "features": [float("nan"), 0.0, 0.0], "z": 1}]}
    with pytest.raises(ValidationError) as info:
        check(json.dumps(body).encode())
    message = error_body(400, _bentoml_style(info.value))["error"]
    for field in ("context.1", "candidates.0.features.0", "candidates.0.z"):
        assert field in message


def test_error_bodies_have_one_shape():
    assert error_body(400, b'[{"error": "n_samples: 9 is more than the maximum 8"}]') == {
        "error": "n_samples: 9 is more than the maximum 8",
        "detail": "invalid request",
    }
    assert error_body(404, b"Not Found") == {"error": "Not Found", "detail": "invalid request"}
    assert error_body(400, b"")["error"] == "HTTP 400"


def test_raw_malformed_bodies_cover_every_kind_and_are_rejected():
    good = {"context": [0.0, 0.0], "candidates": [{"item_id": f"i{k}", "features": [0.0] * 3} for k in range(4)]}
    bad = malformed_bodies([good], SPEC_JSON, count=200, max_body_bytes=1000)
    assert len({kind for kind, _, _ in bad}) == len(mutations(SPEC_JSON)) + 5
    for kind, raw, ctype in bad:
        if ctype != "application/json" or kind == "oversized_body":
            continue  # refused by the HTTP middleware before parsing (tested over HTTP)
        with pytest.raises((ValidationError, RequestError)):
            check(raw)


def test_collate_pads_requests_of_different_sizes():
    bodies = [
        {"context": [1.0, 2.0], "candidates": [{"item_id": str(k), "features": [k, 0.0, 0.0]} for k in range(n)]}
        for n in (2, 5)
    ]
    x, n_samples = collate([check(json.dumps(b).encode()) for b in bodies])
    assert x.item_features.shape == (2, 5, 3)
    assert x.pad_mask.tolist() == [[False, False, True, True, True], [False] * 5]
    assert x.upstream_rank[0].tolist() == [1.0, 2.0, 0.0, 0.0, 0.0]
    assert n_samples.tolist() == [SPEC.default_n_samples] * 2


def _bentoml_style(exc: Exception) -> bytes:
    """The body BentoML writes for an exception reaching it from the endpoint (before our middleware)."""
    if isinstance(exc, ValidationError):
        return json.dumps(
            {"error": "validation", "detail": exc.errors(include_context=False, include_input=False)}
        ).encode()
    return json.dumps([{"error": str(exc)}]).encode()
