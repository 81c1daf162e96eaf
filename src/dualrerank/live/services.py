"""One ``bentoml serve`` process per arm, and the route that sends each arm's users to it.

``ArmServices`` starts the real service (``dualrerank.serving.service``) with the arm's packaged model
(``DUALRERANK_MODEL``), checks that ``GET /metadata`` names the expected model, and routes by arm. A new version
goes live **blue-green**: a second process starts with it and must answer ``/readyz`` and name the new model
before the route moves; the old process is stopped only after a grace period, so a request that read the old
route still gets its answer. No request is turned away during a swap.

``rerank`` retries a request that fails (a refused connection, a 5xx) on the arm's route with growing waits,
restarting the arm's service if its process died, and counts every failed attempt: the loop reports them as
``failed_requests``. A request that fails every attempt stops the round (cleanly: a rerun serves what is missing).
"""

from __future__ import annotations

import http.client
import json
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import psutil

from dualrerank.bench.load import Client
from dualrerank.bench.server import free_port, start_server, started_by, stop_server, wait_ready
from dualrerank.bench.traffic import rerank_body
from dualrerank.world.requests import RequestSet

GRACE_S = 1.0  # a request that read the old route has this long to be answered before the old process stops
PROBE_GAP_S = 0.02  # between a swap's probes: about an arm's rate in the traffic phase, not a flood slowing the start
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0)  # waits between the attempts of one request (a worker restarting)


class ServiceFailed(RuntimeError):
    """An arm's service could not answer a request after every retry."""


@dataclass
class Service:
    arm: str
    tag: str  # the BentoML model tag it serves
    url: str
    version: str  # GET /metadata's model_version
    proc: subprocess.Popen[bytes]
    workers: list[psutil.Process]  # what the server had started once ready: stopped with it, even after it died


class ArmServices:
    def __init__(self, root: Path, logs: Path, startup_timeout_s: float) -> None:
        self.root, self.logs, self.timeout = root, logs, startup_timeout_s
        self.routes: dict[str, Service] = {}
        self.lock = threading.Lock()
        self.failed: Counter[str] = Counter()  # failed attempts per arm since the last ``take_failed``
        self.local = threading.local()  # one kept-alive client per thread and route

    # --- processes --------------------------------------------------------------------------------
    def _launch(self, arm: str, tag: str) -> Service:
        port = free_port()
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{arm}-{port}.log"
        proc = start_server(self.root, port, {"DUALRERANK_MODEL": tag}, log=log)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_ready(url, proc, self.timeout)
            with urllib.request.urlopen(f"{url}/metadata", timeout=10) as r:
                version = json.loads(r.read())["model_version"]
        except Exception as exc:
            stop_server(proc)
            raise RuntimeError(f"{arm}: the service for {tag} did not start ({exc}); its log: {log}") from exc
        if not version.startswith(f"{tag}+"):
            stop_server(proc)
            raise RuntimeError(f"{arm}: the service serves {version}, expected {tag}")
        return Service(arm, tag, url, version, proc, started_by(proc))

    def start(self, arm: str, tag: str) -> Service:
        """Serve ``tag`` on ``arm``'s route (the arm must have none yet)."""
        if arm in self.routes:
            raise RuntimeError(f"{arm} is already served by {self.routes[arm].tag}")
        service = self._launch(arm, tag)
        with self.lock:
            self.routes[arm] = service
        return service

    def swap(self, arm: str, tag: str) -> Service:
        """Blue-green: start ``tag``, move ``arm``'s route to it once ready, then stop the old process."""
        new = self._launch(arm, tag)
        with self.lock:
            old, self.routes[arm] = self.routes[arm], new
        time.sleep(GRACE_S)
        stop_server(old.proc, workers=old.workers)
        return new

    def restart(self, arm: str, dead: Service) -> None:
        """Relaunch ``arm``'s model if its process ``dead`` is still the route (one thread restarts, others wait)."""
        with self.lock:
            if self.routes.get(arm) is not dead:
                return
            stop_server(dead.proc, workers=dead.workers)
            self.routes[arm] = self._launch(arm, dead.tag)

    def stop(self) -> None:
        with self.lock:
            for service in self.routes.values():
                stop_server(service.proc, workers=service.workers)
            self.routes.clear()

    # --- requests ---------------------------------------------------------------------------------
    def route(self, arm: str) -> Service:
        with self.lock:
            return self.routes[arm]

    def _client(self, url: str) -> Client:
        clients: dict[str, Client] = self.local.__dict__.setdefault("clients", {})
        if url not in clients:
            clients[url] = Client(url)
        return clients[url]

    def rerank(self, arm: str, body: bytes) -> dict:
        """``POST /rerank`` on ``arm``'s route; retries failed attempts (restarting a dead process)."""
        error = ""
        for wait in (*BACKOFF_S, None):
            service = self.route(arm)
            try:
                reply = self._client(service.url).post("/rerank", body)
                if reply.status == 200:
                    return dict(json.loads(reply.body))
                error = f"HTTP {reply.status}: {reply.body[:300]!r}"
                if reply.status < 500:  # the request itself is wrong: retrying cannot help
                    raise ServiceFailed(f"{arm}: {error}")
            except (OSError, http.client.HTTPException) as exc:
                error = repr(exc)
            with self.lock:
                self.failed[arm] += 1
            if wait is None:
                break
            if service.proc.poll() is not None:
                self.restart(arm, service)
            else:
                time.sleep(wait)
        raise ServiceFailed(f"{arm}: no answer after {len(BACKOFF_S) + 1} attempts; last error {error}")

    def rerank_pages(
        self, req: RequestSet, arms: np.ndarray, n_samples: int, page_len: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each request of ``req`` through its arm's route (one client thread per arm): ``([R, K] candidate
        indices of the returned pages, [R] model versions that served them)``."""
        pages = np.full((len(req), page_len), -1, dtype=np.int64)
        versions = np.empty(len(req), dtype=object)
        errors: list[BaseException] = []

        def client(arm: str) -> None:
            try:
                for i in np.flatnonzero(arms == arm):
                    body = rerank_body(
                        str(req.request_id[i]), req.item_id[i], req.item_features[i], req.upstream_score[i],
                        req.context_features[i],
                    )  # fmt: skip
                    reply = self.rerank(arm, json.dumps(body | {"n_samples": n_samples}).encode())
                    index = {str(item): j for j, item in enumerate(req.item_id[i])}
                    pages[i, : len(reply["ranking"])] = [index[item] for item in reply["ranking"]]
                    versions[i] = reply["model_version"]
            except BaseException as exc:  # surfaced in the caller's thread
                errors.append(exc)

        threads = [threading.Thread(target=client, args=(arm,), daemon=True) for arm in np.unique(arms)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return pages, versions

    def swap_under_load(self, arm: str, tag: str, probes: list[bytes]) -> dict[str, Any]:
        """``swap`` while a client keeps sending ``arm`` the ``probes`` (answers not kept); every failed attempt
        counts. Returns the swap's seconds, the probes sent and failed, the versions that answered."""
        done, sent, versions = threading.Event(), [0], set()

        def probe() -> None:
            while not done.is_set():
                versions.add(self.rerank(arm, probes[sent[0] % len(probes)])["model_version"])
                sent[0] += 1
                done.wait(PROBE_GAP_S)

        thread = threading.Thread(target=probe, daemon=True)
        t0 = time.perf_counter()
        thread.start()
        try:
            new = self.swap(arm, tag)
            time.sleep(0.5)  # the probe reaches the new process
        finally:  # a failed swap too: the probes stop before the caller stops the services
            done.set()
            thread.join()
        failed = self.take_failed().get(arm, 0)
        return {
            "seconds": time.perf_counter() - t0,
            "probes": sent[0],
            "failed": failed,
            "versions": sorted(versions),
            "now": new.version,
        }

    def take_failed(self) -> dict[str, int]:
        """Failed attempts per arm since the last call."""
        with self.lock:
            counts, self.failed = dict(self.failed), Counter()
        return counts
