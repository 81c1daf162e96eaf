"""Stage ``generate``: produce the raw logs (``data/raw/logs.parquet``).

``data.source: world`` simulates the world: logs, the world's ground truth (``world.npz``) and the
oracle pages of the test requests (``oracle.npz``). Other sources ingest the user's file unchanged;
the ``validate`` stage then checks it. ``data/reports/world.json`` summarises the world's reference
utilities, or (``"world": null``) the ingested table.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from dualrerank.config import Params
from dualrerank.paths import Paths
from dualrerank.world.logs import log_table
from dualrerank.world.simulator import World

SECTIONS = ("world", "data")


def run(params: Params, paths: Paths) -> dict[str, float | str]:
    paths.raw.mkdir(parents=True, exist_ok=True)
    paths.reports.mkdir(parents=True, exist_ok=True)
    if params.data.source != "world":  # the report exists for every source: DVC declares it as a metric
        summary = _ingest(params, paths)
        paths.report("world.json").write_text(json.dumps({"world": None, **summary}, indent=2))
        return summary
    t0 = time.perf_counter()
    world = World.generate(params.world)
    world.save(paths.world)
    table = log_table(world, seed=params.world.seed + 1)
    table.to_parquet(paths.logs, index=False)
    print(
        f"generate: {len(world.requests)} requests x {params.world.n_candidates} candidates "
        f"-> {paths.logs} ({time.perf_counter() - t0:.1f} s)",
        flush=True,
    )
    summary = world_summary(world, paths, progress=params.common.progress)
    paths.report("world.json").write_text(json.dumps(summary, indent=2))
    return summary


def world_summary(world: World, paths: Paths, progress: bool = True) -> dict[str, float | str]:
    """Utility of reference policies on the test requests, the oracle, and the scoring speed."""
    test = world.split("test")
    K = world.cfg.page_len
    upstream = np.tile(np.arange(K), (len(test), 1))
    by_value = np.argsort(-world.item_values(test), axis=1, kind="stable")[:, :K]
    logged, _ = world.log(test, seed=world.cfg.seed + 1)
    t0 = time.perf_counter()
    best = world.oracle(test, progress=progress)
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


def _ingest(params: Params, paths: Paths) -> dict[str, float | str]:
    src = str(params.data.path)
    if params.data.source == "parquet":
        table = pd.read_csv(src) if src.endswith(".csv") else pd.read_parquet(src)
    else:
        raise NotImplementedError(f"data.source {params.data.source!r} is not supported yet")
    table.to_parquet(paths.logs, index=False)
    print(f"generate: ingested {len(table)} rows from {src} -> {paths.logs}", flush=True)
    return {"n_rows": len(table), "source": params.data.source}
