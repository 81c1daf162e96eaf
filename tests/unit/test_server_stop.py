"""Stopping a server stops what it started, also the processes it put in sessions of their own (as BentoML does
with its workers), whether the server stops gracefully, has to be killed, or had already died."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from dualrerank.bench.server import started_by, stop_server

# A "server" that starts a "worker" in a session of its own, then either exits on SIGTERM (the default) or
# ignores it (so stop_server has to kill it); the worker ignores SIGTERM too, as nothing tells it to stop.
WORKER = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
SERVER = f"""
import signal, subprocess, sys, time
worker = subprocess.Popen([sys.executable, "-c", {WORKER!r}], start_new_session=True)
if sys.argv[1] == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
print(worker.pid, flush=True)
time.sleep(600)
"""


def serve(kind: str) -> tuple[subprocess.Popen[bytes], psutil.Process]:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, kind], stdout=subprocess.PIPE, start_new_session=True)
    worker = psutil.Process(int(proc.stdout.readline()))  # type: ignore[union-attr]
    return proc, worker


def gone(p: psutil.Process) -> bool:
    try:
        return not p.is_running() or p.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("kind", ["polite", "stubborn"])
def test_stopping_a_server_stops_the_worker_it_started_outside_its_group(kind):
    proc, worker = serve(kind)
    assert [p.pid for p in started_by(proc)] == [worker.pid]
    stop_server(proc, timeout_s=1.0)
    assert proc.poll() is not None and gone(worker)


def test_a_dead_servers_recorded_workers_are_stopped():
    proc, worker = serve("polite")
    workers = started_by(proc)
    proc.kill()
    proc.wait()
    time.sleep(0.1)
    assert started_by(proc) == [] and not gone(worker)  # orphaned and still running
    stop_server(proc, timeout_s=1.0, workers=workers)
    assert gone(worker)
