"""``dualrerank bench-serve``: the served reranker under load, side by side with the AR teacher (docs/method.md).

Three ``bentoml serve`` processes of the same service code and packaged model run at once: Best-of-N
NAR with batching, the same without batching, and the AR teacher (greedy). Each concurrency level is
measured in rounds, and in every round each server gets an equal share of the requests in a shuffled
order, so a slow phase of a shared machine hits all of them alike. Then malformed requests of every
kind go to the NAR server; none may get a 5xx. To tell the model's cost from the server's, the report
also has each server's CPU milliseconds per request and the same requests timed in-process (no HTTP).
Results: ``data/reports/serving.json``.
"""

from __future__ import annotations

import json
import math
import os
import random
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psutil

from dualrerank.bench.load import Client, run_load, summarize
from dualrerank.bench.server import free_port, start_server, stop_server, wait_ready
from dualrerank.bench.traffic import malformed_bodies, valid_bodies
from dualrerank.config.serving import PackageConfig
from dualrerank.data.slates import Slates
from dualrerank.serving.adapter import prepare
from dualrerank.serving.schemas import RerankRequest
from dualrerank.serving.store import ENV_BACKEND, ENV_BATCHING, ENV_GENERATOR, MODEL_NAME, load_engine

SERVERS = {
    "nar_bon": {ENV_GENERATOR: "nar", ENV_BATCHING: "1"},
    "nar_bon_unbatched": {ENV_GENERATOR: "nar", ENV_BATCHING: "0"},
    "ar_greedy": {ENV_GENERATOR: "ar", ENV_BATCHING: "1"},
}
ROUNDS = 6  # interleaving rounds per concurrency level
SLA_P99_MS = 20.0  # the paper's latency budget, sequential requests
AR_RATIO_TARGET = 0.6  # Best-of-N NAR p50 at most this share of AR greedy p50


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as r:
        data: dict[str, Any] = json.loads(r.read())
        return data


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a server and its worker processes."""
    proc = psutil.Process(pid)
    return sum(sum(p.cpu_times()[:2]) for p in [proc, *proc.children(recursive=True)])


def measure(
    urls: dict[str, str], pids: dict[str, int], bodies: list[bytes], concurrency: int, requests: int, seed: int
) -> dict[str, Any]:
    """Interleaved rounds: per server, the merged latencies and throughput of ``requests`` requests, and
    the server's CPU milliseconds per request (robust to a loaded machine, unlike wall-clock latency)."""
    rng = random.Random(seed)
    lat: dict[str, list[float]] = defaultdict(list)
    wall: dict[str, float] = defaultdict(float)
    cpu: dict[str, float] = defaultdict(float)
    bad: dict[str, int] = defaultdict(int)
    per_round = math.ceil(requests / ROUNDS)
    for r in range(ROUNDS):
        names = list(urls)
        rng.shuffle(names)
        for name in names:
            c0 = cpu_seconds(pids[name])
            got, seconds, failures = run_load(urls[name], bodies, concurrency, per_round, offset=r * per_round)
            cpu[name] += cpu_seconds(pids[name]) - c0
            lat[name] += got
            wall[name] += seconds
            bad[name] += failures
    return {
        name: {
            **summarize(lat[name], wall[name], bad[name]),
            "server_cpu_ms_per_request": 1000 * cpu[name] / len(lat[name]),
        }
        for name in urls
    }


def in_process(bodies: list[bytes], n: int, seed: int = 0) -> dict[str, dict[str, float]]:
    """The same requests without HTTP: parse, check and one forward pass in this process, NAR Best-of-N (as packaged,
    and in eager torch) and AR greedy interleaved. What the model costs, apart from the server around it."""
    import bentoml

    stored = bentoml.models.get(f"{MODEL_NAME}:latest")
    switches = {
        "nar_bon": {ENV_GENERATOR: "nar"},  # as packaged (package.backend)
        "nar_bon_torch": {ENV_GENERATOR: "nar", ENV_BACKEND: "torch"},  # the same in eager torch, for the ratio
        "ar_greedy": {ENV_GENERATOR: "ar"},
    }
    engines = {
        name: load_engine(Path(stored.path), stored.info.metadata, str(stored.tag), env)
        for name, env in switches.items()
    }
    rng = random.Random(seed)
    times: dict[str, list[float]] = defaultdict(list)
    for i in range(n):
        names = list(engines)
        rng.shuffle(names)
        for name in names:
            engine = engines[name]
            t0 = time.perf_counter()
            engine.rerank_batch([prepare(RerankRequest.model_validate_json(bodies[i % len(bodies)]), engine.spec)])
            times[name].append(time.perf_counter() - t0)
    for engine in engines.values():
        engine.close()
    return {name: summarize(t, sum(t)) for name, t in times.items()}


def send_malformed(url: str, bodies: list[bytes], spec: dict[str, Any], count: int, max_body: int) -> dict[str, Any]:
    """Every malformed request once; status counts overall and per kind, and a health check after."""
    decoded = [json.loads(b) for b in bodies]
    client = Client(url)
    by_kind: dict[str, Counter[int]] = defaultdict(Counter)
    examples: dict[str, str] = {}
    for kind, raw, ctype in malformed_bodies(decoded, spec, count, max_body):
        reply = client.post("/rerank", raw, ctype)
        by_kind[kind][reply.status] += 1
        examples.setdefault(kind, reply.body.decode("utf-8", "replace")[:200])
    healthy = client.post("/rerank", bodies[0]).status == 200
    client.close()
    statuses: Counter[int] = sum(by_kind.values(), Counter())
    return {
        "sent": count,
        "status_counts": {str(k): v for k, v in sorted(statuses.items())},
        "server_errors": sum(v for k, v in statuses.items() if k >= 500),
        "not_4xx": sum(v for k, v in statuses.items() if not 400 <= k < 500),
        "by_kind": {k: {str(s): n for s, n in c.items()} for k, c in by_kind.items()},
        "example_errors": examples,
        "healthy_after": healthy,
    }


def bench_serve(cfg: PackageConfig, test_split: Path, root: Path) -> dict[str, Any]:
    """Run the whole benchmark against the latest packaged model; the report as a dict."""
    b = cfg.bench
    bodies = [
        json.dumps(x).encode() for x in valid_bodies(Slates.load(test_split), b.n_candidates, b.distinct_requests)
    ]
    procs, urls = {}, {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as logs:
        try:
            for name, env in SERVERS.items():
                port = free_port()
                urls[name] = f"http://127.0.0.1:{port}"
                procs[name] = start_server(root, port, env, log=Path(logs) / f"{name}.log")
            startup = {name: wait_ready(urls[name], procs[name], b.startup_timeout_s) for name in SERVERS}
            meta = {name: _get_json(f"{url}/metadata") for name, url in urls.items()}
            for url in urls.values():
                run_load(url, bodies, 1, b.warmup)
            t0 = time.perf_counter()
            pids = {name: proc.pid for name, proc in procs.items()}
            levels = {str(c): measure(urls, pids, bodies, c, b.requests, seed=c) for c in b.concurrency}
            malformed = send_malformed(urls["nar_bon"], bodies, meta["nar_bon"], b.malformed, 1024 * cfg.max_body_kib)
            seconds = time.perf_counter() - t0
        finally:
            for proc in procs.values():
                stop_server(proc)
    levels["in_process"] = in_process(bodies, b.requests)
    return report(meta, startup, levels, malformed, load_before, seconds, cfg)


def report(
    meta: dict[str, Any],
    startup: dict[str, float],
    levels: dict[str, Any],
    malformed: dict[str, Any],
    load_before: tuple[float, float, float],
    seconds: float,
    cfg: PackageConfig,
) -> dict[str, Any]:
    """The report: setup, per-level latency/throughput per server, the two ratios and the done-checks."""
    seq, top = levels[str(min(cfg.bench.concurrency))], levels[str(max(cfg.bench.concurrency))]
    ratio = seq["nar_bon"]["p50_ms"] / seq["ar_greedy"]["p50_ms"]
    gain = top["nar_bon"]["throughput_rps"] / top["nar_bon_unbatched"]["throughput_rps"]
    return {
        "model_version": meta["nar_bon"]["model_version"],
        "setup": {
            "n_candidates": cfg.bench.n_candidates,
            "page_len": meta["nar_bon"]["page_len"],
            "n_samples": meta["nar_bon"]["default_n_samples"],
            "servers": {name: {"generator": m["generator"], "batching": m["batching"]} for name, m in meta.items()},
            "concurrency": list(cfg.bench.concurrency),
            "requests_per_level": cfg.bench.requests,
            "cpus": os.cpu_count(),
            "load_avg_before": list(load_before),
            "load_avg_after": list(os.getloadavg()),
            "startup_s": startup,
            "seconds": seconds,
            "note": "end-to-end client latency over HTTP on 127.0.0.1; client and servers share the machine",
        },
        "levels": levels,
        "ratios": {
            "nar_bon_p50_over_ar_greedy_p50": ratio,
            "batching_throughput_gain": gain,
            "server_cpu_nar_bon_over_ar_greedy": seq["nar_bon"]["server_cpu_ms_per_request"]
            / seq["ar_greedy"]["server_cpu_ms_per_request"],
            "in_process_p50_nar_bon_over_ar_greedy": levels["in_process"]["nar_bon"]["p50_ms"]
            / levels["in_process"]["ar_greedy"]["p50_ms"],
            "in_process_p50_nar_bon_over_nar_bon_torch": levels["in_process"]["nar_bon"]["p50_ms"]
            / levels["in_process"]["nar_bon_torch"]["p50_ms"],
        },
        "checks": {
            "sequential_p99_under_20ms": seq["nar_bon"]["p99_ms"] < SLA_P99_MS,
            "nar_bon_p50_at_most_0.6_ar_greedy": ratio <= AR_RATIO_TARGET,
            "batching_raises_throughput": gain > 1.0,
            "malformed_zero_5xx": malformed["server_errors"] == 0,
        },
        "malformed": malformed,
    }
