"""Stage ``generate``: produce the raw logs (``data/raw/logs.parquet``) and, when the data has one, its truth.

``data.source: world`` simulates the world; ``svmlight`` builds a world from LETOR files (graded labels drive
the click model, ``world/letor.py``). Both write the logs, the world (``truth/world.npz``) and the oracle
pages of the test requests (``truth/oracle.npz``); LETOR data also writes the graded labels
(``truth/relevance.npz``). ``parquet`` (or CSV) ingests the user's table unchanged and writes no truth: the
``validate`` stage checks the table, and the report leaves the true-utility fields null.
``truth/source.json`` always says where the logs came from.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import numpy as np

from dualrerank.config import Params
from dualrerank.data.tables import read_table
from dualrerank.paths import Paths
from dualrerank.world.letor import load_letor
from dualrerank.world.logs import log_table
from dualrerank.world.simulator import World

SECTIONS = ("world", "data")


def run(params: Params, paths: Paths) -> dict[str, float | str]:
    paths.raw.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(paths.truth, ignore_errors=True)  # truth from an earlier source must never meet these logs
    paths.truth.mkdir(parents=True)
    source = params.data.source
    inputs = [] if source == "world" else _inputs(params, paths)
    summary = _ingest(inputs[0], paths) if source == "parquet" else _simulate(params, paths)
    record = {"source": source, "ground_truth": paths.world.exists(), "inputs": {str(p): _sha256(p) for p in inputs}}
    paths.source.write_text(json.dumps(record, indent=2))
    paths.reports.mkdir(parents=True, exist_ok=True)
    paths.report("world.json").write_text(json.dumps(summary, indent=2))  # a DVC metric for every source
    return summary


def _simulate(params: Params, paths: Paths) -> dict[str, float | str]:
    """Logs and truth of the simulated world, or of the world built from LETOR files."""
    t0 = time.perf_counter()
    extra: dict[str, float | str] = {}
    if params.data.source == "world":
        world = World.generate(params.world)
        table = log_table(world, seed=params.world.seed + 1)
    else:
        d = params.data
        letor = load_letor(input_path(params, paths), d.svmlight, params.world, d.val_fraction, d.test_fraction)
        world = letor.world
        table = log_table(world, params.world.seed + 1, letor.item_names, letor.context_names)
        np.savez(paths.relevance, request_id=world.requests.request_id, grade=letor.grade, qid=world.requests.query)
        extra = {f"n_dropped_queries_{k}": float(v) for k, v in letor.n_dropped.items()}
    world.save(paths.world)
    table.to_parquet(paths.logs, index=False)
    print(
        f"generate: {len(world.requests)} requests x {world.cfg.n_candidates} candidates "
        f"-> {paths.logs} ({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    summary = world_summary(world, paths, progress=params.common.progress, workers=params.common.num_threads)
    return {**summary, **extra}


def world_summary(world: World, paths: Paths, progress: bool = True, workers: int = 1) -> dict[str, float | str]:
    """Utility of reference policies on the test requests, the oracle, and the scoring speed."""
    test = world.split("test")
    K = world.cfg.page_len
    upstream = np.tile(np.arange(K), (len(test), 1))
    by_value = np.argsort(-world.item_values(test), axis=1, kind="stable")[:, :K]
    logged, _ = world.log(test, seed=world.cfg.seed + 1)
    t0 = time.perf_counter()
    best = world.oracle(test, progress=progress, workers=workers)  # one process per CPU thread allowed
    oracle_seconds = time.perf_counter() - t0
    np.savez(
        paths.oracle, request_id=test.request_id, pages=best.pages, utility=best.utility, method=np.array(best.method)
    )

    reps = int(np.ceil(10_000 / len(test)))
    many = test.subset(np.tile(np.arange(len(test)), reps)[:10_000])
    pages = np.tile(upstream, (reps, 1))[:10_000]
    t0 = time.perf_counter()
    world.utility(many, pages)
    score_ms = 1000 * (time.perf_counter() - t0)

    u_up, u_val = world.utility(test, upstream).mean(), world.utility(test, by_value).mean()
    u_log, u_or = world.utility(test, logged).mean(), best.utility.mean()
    return {
        "n_requests": len(world.requests),
        "n_test_requests": len(test),
        "n_candidates": world.cfg.n_candidates,
        "page_len": K,
        "utility_upstream": float(u_up),
        "utility_logging_policy": float(u_log),
        "utility_item_value_sort": float(u_val),
        "utility_oracle": float(u_or),
        "oracle_method": best.method,
        "oracle_over_upstream": float(u_or / u_up - 1.0),
        "oracle_over_item_value_sort": float(u_or / u_val - 1.0),
        "oracle_seconds": oracle_seconds,
        "score_10k_pages_ms": score_ms,
    }


def input_path(params: Params, paths: Paths) -> Path:
    """``data.path``, relative to the project root unless absolute."""
    path = Path(str(params.data.path))
    return path if path.is_absolute() else paths.root / path


def _inputs(params: Params, paths: Paths) -> list[Path]:
    """The input files of a non-world source (recorded with their checksums in ``truth/source.json``)."""
    path = input_path(params, paths)
    if params.data.source == "parquet":
        return [path]
    s = params.data.svmlight
    return [path / name for name in (s.train_file, s.val_file, s.test_file) if name is not None]


def _sha256(path: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"data.path: input file {path} does not exist")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _ingest(src: Path, paths: Paths) -> dict[str, float | str]:
    """Copy a Parquet/CSV table to ``logs.parquet`` unchanged (``validate`` checks it)."""
    if not src.is_file():
        raise FileNotFoundError(f"data.path: input file {src} does not exist")
    table = read_table(src)
    table.to_parquet(paths.logs, index=False)
    print(f"generate: ingested {len(table)} rows from {src} -> {paths.logs} (no ground truth)", flush=True)
    return {"n_rows": float(len(table)), "source": "parquet", "ground_truth": "none"}
