"""``bentoml serve`` from the repository root on a free local port, over real HTTP.

One server for the module (start-up dominates): valid and invalid requests with their codes and
messages, every malformed kind of the load benchmark, concurrent clients, and a schemathesis run
against the service's own OpenAPI document (no 5xx, responses and codes as documented, schema-invalid
bodies rejected). The server is stopped whatever happens.
"""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from dualrerank.bench.load import Client, run_load
from dualrerank.bench.server import free_port, start_server, stop_server, wait_ready
from dualrerank.bench.traffic import malformed_bodies
from serving_models import FC, F, K, package_tiny, request_body

ROOT = Path(__file__).resolve().parents[2]
# The schema cannot state the served model's widths (they are in GET /metadata), so schema-valid bodies
# may still be refused: positive_data_acceptance is not a check here; everything else is.
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def server(tmp_path_factory, make_tiny_params):
    summary = package_tiny(tmp_path_factory.mktemp("http"), make_tiny_params())
    port = free_port()
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    proc = start_server(ROOT, port, {"DUALRERANK_MODEL": summary["model_tag"]}, target=None, log=log)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, proc, timeout_s=180)
        yield url, summary["model_tag"]
    finally:
        stop_server(proc)
    assert proc.poll() is not None


def post(url: str, body: object, content_type: str = "application/json") -> tuple[int, dict]:
    c = Client(url)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = c.post("/rerank", raw, content_type)
    c.close()
    return reply.status, json.loads(reply.body)


@pytest.mark.integration
def test_metadata_and_a_valid_request(server):
    url, tag = server
    with urllib.request.urlopen(f"{url}/metadata") as r:
        meta = json.loads(r.read())
    assert meta["model_version"].startswith(tag + "+")
    assert (meta["n_item_features"], meta["n_context_features"], meta["page_len"]) == (F, FC, K)
    body = request_body(n=9, seed=1)
    status, out = post(url, body)
    assert status == 200 and len(out["ranking"]) == K and len(set(out["ranking"])) == K
    assert out["scores"]["n_samples"] == meta["default_n_samples"] and out["model_version"] == meta["model_version"]
    status, out = post(url, request_body(n=2, seed=2))  # fewer than K: all of them
    assert status == 200 and sorted(out["ranking"]) == sorted(f"item-2-{i}" for i in range(2))


@pytest.mark.integration
def test_invalid_requests_get_400_naming_the_field(server):
    url, _ = server
    wide = request_body(n=3)
    wide["candidates"][1]["features"].append(0.0)
    cases = [
        (wide, 400, "candidates.1.features: expected 5 values, got 6"),
        ({**request_body(n=3), "n_samples": 0}, 400, "n_samples"),
        ({**request_body(n=3), "color": "red"}, 400, "color"),
        ({"candidates": []}, 400, "context: Field required; candidates"),
        (b'{"context": [1, 2, 3], "candidates": [{"item_id": "a", "features": [1, 2, NaN, 4, 5]}]}', 400, "features.2"),
        (b"{not json", 400, "Invalid JSON"),
        (b" " * 600_000, 413, "body: larger than the limit"),
    ]
    for body, code, message in cases:
        status, out = post(url, body)
        assert (status, set(out)) == (code, {"error", "detail"}) and message in out["error"], (body, out)
    status, out = post(url, request_body(n=3), content_type="text/plain")
    assert status == 415 and "content-type" in out["error"]


@pytest.mark.integration
def test_malformed_requests_of_every_kind_get_4xx_and_the_server_stays_healthy(server):
    url, _ = server
    with urllib.request.urlopen(f"{url}/metadata") as r:
        meta = json.loads(r.read())
    bodies = malformed_bodies([request_body(n=6, seed=s) for s in range(3)], meta, count=120, max_body_bytes=600_000)
    client = Client(url)
    statuses = {}
    for kind, raw, ctype in bodies:
        reply = client.post("/rerank", raw, ctype)
        statuses[kind] = reply.status
        assert 400 <= reply.status < 500 and json.loads(reply.body)["error"], (kind, reply.body[:200])
    client.close()
    assert len(statuses) > 30
    latencies, _, failures = run_load(url, [json.dumps(request_body(n=8, seed=s)).encode() for s in range(4)], 4, 24)
    assert failures == 0 and len(latencies) == 24


@pytest.mark.integration
def test_schemathesis_against_the_services_own_openapi(server):
    url, _ = server
    config = SchemathesisConfig.from_dict(
        {"checks": {"negative_data_rejection": {"expected-statuses": [400, 413, 415]}}}
    )
    schema = schemathesis.openapi.from_url(f"{url}/docs.json", config=config).include(path_regex="^/(rerank|metadata)$")
    calls: list[int] = []
    for result in schema.get_all_operations():
        op = result.ok()
        modes = [GenerationMode.POSITIVE] + ([GenerationMode.NEGATIVE] if op.method == "post" else [])
        for mode in modes:
            checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
            fuzz(op, mode, checks, url, calls)
    assert len(calls) >= 60 and not [s for s in calls if s >= 500]
    assert {200, 400} <= set(calls)


def fuzz(op, mode, checks, url: str, calls: list[int]) -> None:
    """Up to 40 generated cases of one operation; any failed check raises with a reproducing curl line."""

    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def check(case):
        calls.append(case.call_and_validate(base_url=url, checks=checks).status_code)

    check()
