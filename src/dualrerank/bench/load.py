"""A small closed-loop HTTP load generator: ``c`` clients, each sending its next request when the last
one is answered, on kept-alive connections, timing every request end to end (send to last byte)."""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    seconds: float


class Client:
    """One kept-alive connection; reconnects once if the server closed it."""

    def __init__(self, url: str, timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.timeout = parts.hostname or "127.0.0.1", parts.port or 80, timeout_s
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> Reply:
        for attempt in (0, 1):
            t0 = time.perf_counter()
            try:
                self.conn.request("POST", path, body, {"content-type": content_type})
                resp = self.conn.getresponse()
                data = resp.read()
                return Reply(resp.status, data, time.perf_counter() - t0)
            except (ConnectionError, http.client.HTTPException):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def run_load(
    url: str, bodies: list[bytes], concurrency: int, n_requests: int, offset: int = 0
) -> tuple[list[float], float, int]:
    """Send ``n_requests`` bodies (cycled from ``offset``) from ``concurrency`` clients to ``url/rerank``.

    Returns every request's latency in seconds, the wall time, and the count of non-200 replies.
    """
    latencies: list[float] = []
    failures = [0]
    lock = threading.Lock()
    counter = iter(range(n_requests))

    def client() -> None:
        c = Client(url)
        try:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                reply = c.post("/rerank", bodies[(offset + i) % len(bodies)])
                with lock:
                    latencies.append(reply.seconds)
                    failures[0] += reply.status != 200
        finally:
            c.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, time.perf_counter() - t0, failures[0]


def summarize(latencies: list[float], wall_s: float, failures: int = 0) -> dict[str, float]:
    ms = 1000 * np.asarray(latencies)
    return {
        "requests": float(len(ms)),
        "p50_ms": float(np.percentile(ms, 50)),
        "p95_ms": float(np.percentile(ms, 95)),
        "p99_ms": float(np.percentile(ms, 99)),
        "mean_ms": float(ms.mean()),
        "throughput_rps": float(len(ms) / wall_s),
        "non_200": float(failures),
    }
