"""Start, wait for and stop a local ``bentoml serve`` process (benchmark, integration tests, ``bentoml build``).

Child processes import the same ``dualrerank`` code as the caller (its folder goes first on
``PYTHONPATH``), so a worktree or a test run never serves another copy of the package. The server runs
in its own process group; BentoML starts its workers in sessions of their own, outside that group, so stopping
a server also stops every process it had started (a SIGKILL of the group alone would leave them serving).
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import psutil

from dualrerank.childenv import code_env

SERVICE = "dualrerank.serving.service:Reranker"


EPHEMERAL_FALLBACK = (32768, 60999)  # Linux's default range, where /proc does not say


def ephemeral_ports(path: Path = Path("/proc/sys/net/ipv4/ip_local_port_range")) -> tuple[int, int]:
    """The kernel's range of ports for sockets bound to port 0 (``EPHEMERAL_FALLBACK`` if it cannot be read)."""
    try:
        low, high = (int(v) for v in path.read_text().split())
    except (OSError, ValueError):
        return EPHEMERAL_FALLBACK
    return low, high


def free_port() -> int:
    """A free port on 127.0.0.1 for a server to bind a moment later, taken below the ephemeral range. A port from
    that range (what binding port 0 gives) may be handed again to the next socket bound to port 0 before the server
    binds it: BentoML binds such sockets for its own processes as it starts, and one did take the port meant for
    the HTTP server (``Address already in use``)."""
    low = ephemeral_ports()[0]
    rng = random.SystemRandom()
    for _ in range(200):
        port = rng.randrange(max(1024, low - 10000), low)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port found below {low}")


def start_server(
    root: Path, port: int, env: Mapping[str, str] | None = None, target: str | None = SERVICE, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """``bentoml serve [target]`` in ``root`` on 127.0.0.1:``port`` (``target=None``: from bentofile.yaml)."""
    cmd = [sys.executable, "-m", "bentoml", "serve", *([target] if target else []), "--host", "127.0.0.1"]
    cmd += ["--port", str(port)]
    out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - owned by the child
    return subprocess.Popen(
        cmd, cwd=root, env=code_env(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Poll ``url/readyz`` until it answers 200; seconds waited. Raises if the server dies or times out."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=2) as r:
                if r.status == 200:
                    return time.monotonic() - t0
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"server at {url} not ready after {timeout_s:.0f} s")


def started_by(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """Every live process ``proc`` has started (BentoML's workers among them); empty once it has exited."""
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def stop_server(
    proc: subprocess.Popen[bytes], timeout_s: float = 15.0, workers: list[psutil.Process] | None = None
) -> None:
    """SIGTERM to the server's process group, then SIGKILL if it has not exited in time; then the same for every
    process it had started (``workers``: those recorded while it ran, for a server that has already died)."""
    workers = [*(workers or []), *started_by(proc)]
    graceful = False
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout_s)
            graceful = True
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout_s)
        except ProcessLookupError:
            pass
    alive = [w for w in workers if w.is_running()]
    if graceful:  # the server stops its own workers; give them the same time
        _, alive = psutil.wait_procs(alive, timeout=timeout_s)
    for worker in alive:  # a killed or dead server leaves them running
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
    psutil.wait_procs(alive, timeout=timeout_s)
