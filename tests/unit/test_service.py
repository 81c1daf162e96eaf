"""The BentoML service class called directly (no server), on tiny real networks packaged by the real stage.

Pins the served rankings to the networks' own decoders, checks Best-of-N against greedy under the judge,
batching against one-at-a-time, the AR switch, and that model-dependent errors name the field.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
from pathlib import Path

import pytest
import torch
from bentoml.exceptions import InvalidArgument

from dualrerank.models.io import load_as
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.sampling import masked_sequential_argmax
from dualrerank.serving.adapter import collate, prepare
from dualrerank.serving.batching import MicroBatcher
from dualrerank.serving.schemas import RerankRequest
from dualrerank.serving.store import files_digest, load_engine, model_version, packaged_files
from serving_models import K, package_tiny, request_body


@pytest.fixture(scope="module")
def packaged(tmp_path_factory, make_tiny_params):
    root = tmp_path_factory.mktemp("served")
    summary = package_tiny(root, make_tiny_params())
    return root, summary["model_tag"]


@pytest.fixture(scope="module")
def service(packaged):
    """An instance of the BentoML service class ``Reranker`` serving the tiny packaged model."""
    mp = pytest.MonkeyPatch()
    mp.setenv("DUALRERANK_MODEL", packaged[1])
    import dualrerank.serving.service as module

    svc = importlib.reload(module).Reranker()
    yield svc
    svc.engine.close()
    mp.undo()


def rerank(svc, body):
    return asyncio.run(svc.rerank(RerankRequest.model_validate(body)))


def networks(root: Path) -> tuple[NARStudent, ARTeacher]:
    return load_as(root / "data/models/student.ckpt", NARStudent)[0], load_as(
        root / "data/models/teacher.ckpt", ARTeacher
    )[0]


def test_metadata_describes_the_packaged_model(service, packaged):
    meta = service.metadata()
    assert meta.model_version.startswith(packaged[1] + "+")
    assert (meta.n_item_features, meta.n_context_features, meta.page_len) == (5, 3, K)
    assert (meta.default_n_samples, meta.max_n_samples, meta.max_candidates) == (4, 8, 30)
    assert meta.generator == "nar" and meta.batching is True


def test_start_up_freezes_the_loaded_heap_out_of_the_garbage_collector(service):
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    fresh = type(service)()
    try:
        assert gc.get_freeze_count() > 0  # full collections no longer walk the model and libraries
    finally:
        fresh.engine.close()
        gc.unfreeze()


def test_best_of_n_returns_k_distinct_candidates_never_worse_than_greedy(service):
    for seed in range(5):
        body = request_body(n=9, seed=seed)
        out = rerank(service, body)
        ids = [c["item_id"] for c in body["candidates"]]
        assert len(out.ranking) == K and len(set(out.ranking)) == K and set(out.ranking) <= set(ids)
        assert out.scores.n_samples == 4 and len(out.scores.slots) == K
        assert out.scores.page >= out.scores.greedy_page - 1e-6


def test_greedy_request_is_the_students_masked_argmax(service, packaged):
    student, _ = networks(packaged[0])
    body = request_body(n=7, seed=3, n_samples=1)
    out = rerank(service, body)
    x, _ = collate([prepare(RerankRequest.model_validate(body), service.engine.spec)])
    with torch.inference_mode():
        want = masked_sequential_argmax(student(x), x.pad_mask)[0].tolist()
    assert out.ranking == [body["candidates"][i]["item_id"] for i in want]
    assert out.scores.page is None and out.scores.n_samples == 1


def test_fewer_candidates_than_page_len_returns_all_of_them(service):
    body = request_body(n=K - 2, seed=4)
    out = rerank(service, body)
    assert sorted(out.ranking) == sorted(c["item_id"] for c in body["candidates"])
    assert len(out.scores.slots) == K - 2


def test_missing_upstream_scores_use_the_stand_in_from_the_order(service):
    body = request_body(n=6, seed=5, n_samples=1)
    scored = {
        **body,
        "candidates": [
            {**c, "upstream_score": -float(torch.log(torch.tensor(i + 1.0)))} for i, c in enumerate(body["candidates"])
        ],
    }
    assert rerank(service, body).ranking == rerank(service, scored).ranking


def test_concurrent_requests_share_a_batch_and_match_one_at_a_time(service):
    bodies = [request_body(n=5 + i % 4, seed=10 + i, n_samples=1) for i in range(6)]
    alone = [rerank(service, b).ranking for b in bodies]
    before = len(service.engine.batcher.batch_sizes)

    async def together():
        return await asyncio.gather(*(service.rerank(RerankRequest.model_validate(b)) for b in bodies))

    outs = asyncio.run(together())
    assert [o.ranking for o in outs] == alone  # padding to the batch's longest request changes nothing
    assert max(service.engine.batcher.batch_sizes[before:]) > 1


def test_a_request_id_keys_the_draws_so_a_request_gets_the_same_page_in_any_batch(service):
    bodies = [request_body(n=8 + 3 * i, seed=40 + i, n_samples=8) for i in range(6)]
    alone = [rerank(service, b).ranking for b in bodies]

    async def together():
        return await asyncio.gather(*(service.rerank(RerankRequest.model_validate(b)) for b in bodies[::-1]))

    assert [o.ranking for o in asyncio.run(together())][::-1] == alone
    assert [rerank(service, b).ranking for b in bodies] == alone
    anonymous = [{k: v for k, v in b.items() if k != "request_id"} for b in bodies]
    first, second = ([rerank(service, b).ranking for b in anonymous] for _ in range(2))
    assert first != second  # without an id, each call draws from the service's stream


def test_model_dependent_errors_are_invalid_argument_naming_the_field(service):
    with pytest.raises(InvalidArgument, match=r"candidates\.2\.features: expected 5 values, got 4"):
        body = request_body(n=4)
        body["candidates"][2]["features"] = body["candidates"][2]["features"][:4]
        rerank(service, body)
    with pytest.raises(InvalidArgument, match="candidates: 31 candidates, more than the maximum 30"):
        rerank(service, request_body(n=31))
    with pytest.raises(InvalidArgument, match="n_samples: 9 is more than the maximum 8"):
        rerank(service, request_body(n=4, n_samples=9))


def test_ar_switch_serves_the_teachers_greedy_list(packaged):
    import bentoml

    stored = bentoml.models.get(packaged[1])
    engine = load_engine(Path(stored.path), stored.info.metadata, str(stored.tag), {"DUALRERANK_GENERATOR": "ar"})
    _, teacher = networks(packaged[0])
    body = request_body(n=8, seed=6)
    out = asyncio.run(engine.rerank(RerankRequest.model_validate(body)))
    x, _ = collate([prepare(RerankRequest.model_validate(body), engine.spec)])
    want = teacher.greedy(x)[0].tolist()
    assert out.ranking == [body["candidates"][i]["item_id"] for i in want]
    assert engine.metadata.generator == "ar" and out.scores.n_samples == 1
    engine.close()


def test_tampered_model_files_are_refused(packaged, tmp_path):
    import shutil

    import bentoml

    stored = bentoml.models.get(packaged[1])
    copy = tmp_path / "copy"
    shutil.copytree(stored.path, copy)
    assert files_digest(packaged_files(copy)) == stored.info.metadata["sha256"]
    (copy / "evaluator.ckpt").write_bytes((copy / "evaluator.ckpt").read_bytes() + b"\0")
    with pytest.raises(RuntimeError, match="do not match the packaged SHA-256"):
        load_engine(copy, stored.info.metadata, str(stored.tag), {})


def test_bad_start_up_switches_are_refused(packaged):
    import bentoml

    from dualrerank.config import ConfigError

    stored = bentoml.models.get(packaged[1])
    with pytest.raises(ConfigError, match="DUALRERANK_GENERATOR"):
        load_engine(Path(stored.path), stored.info.metadata, str(stored.tag), {"DUALRERANK_GENERATOR": "beam"})
    with pytest.raises(ConfigError, match="DUALRERANK_BACKEND"):
        load_engine(Path(stored.path), stored.info.metadata, str(stored.tag), {"DUALRERANK_BACKEND": "tvm"})


def test_both_backends_serve_the_same_pages_and_older_packages_run_torch(packaged):
    import bentoml

    from dualrerank.reranking.exported import ExportedStudent

    stored = bentoml.models.get(packaged[1])
    meta = stored.info.metadata
    assert meta["package"]["backend"] == "onnx"  # what params.yaml packages
    served = load_engine(Path(stored.path), meta, str(stored.tag), {})
    eager = load_engine(Path(stored.path), meta, str(stored.tag), {"DUALRERANK_BACKEND": "torch"})
    assert isinstance(served.reranker.generator, ExportedStudent)
    assert isinstance(eager.reranker.generator, NARStudent)
    for seed, n in ((1, 8), (2, 30), (3, 3)):
        body = request_body(n=n, seed=seed)
        a, b = (asyncio.run(e.rerank(RerankRequest.model_validate(body))) for e in (served, eager))
        assert a.ranking == b.ranking and a.scores.n_samples == b.scores.n_samples
        assert a.scores.page == pytest.approx(b.scores.page, abs=1e-4)
    old = {**meta, "package": {k: v for k, v in meta["package"].items() if k != "backend"}}
    before = load_engine(Path(stored.path), old, str(stored.tag), {})  # packaged before the setting existed
    assert isinstance(before.reranker.generator, NARStudent)
    for engine in (served, eager, before):
        engine.close()


def test_micro_batcher_fails_one_batch_and_keeps_serving():
    calls: list[list[int]] = []

    def fn(items):
        calls.append(list(items))
        if -1 in items:
            raise ValueError("boom")
        return [2 * i for i in items]

    batcher = MicroBatcher(fn, max_batch_size=3)

    async def run():
        bad = await asyncio.gather(batcher.submit(1), batcher.submit(-1), return_exceptions=True)
        good = await asyncio.gather(*(batcher.submit(i) for i in range(5)))
        return bad, good

    bad, good = asyncio.run(run())
    assert isinstance(bad[1], ValueError) and isinstance(bad[0], (ValueError, int))
    assert good == [0, 2, 4, 6, 8]
    assert max(len(c) for c in calls) <= 3
    batcher.close()


def test_model_version_names_the_tag_the_weights_and_the_registered_version():
    assert model_version("m:v1", "ab" * 32, {}) == "m:v1+abababababab"
    assert model_version("m:v1", "ab" * 32, {"mlflow_model_version": 3}) == "m:v1+abababababab+mlflow-v3"
