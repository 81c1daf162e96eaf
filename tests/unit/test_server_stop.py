"""Stopping a server stops what it started, also the processes it put in sessions of their own (as BentoML does
with its workers), whether the server stops gracefully, has to be killed, or had already died. And the port a server
is given is outside the range that sockets bound to port 0 get (BentoML's own took one once)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import psutil
import pytest

from dualrerank.bench.server import EPHEMERAL_FALLBACK, ephemeral_ports, free_port, started_by, stop_server

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


def test_the_ephemeral_range_is_read_from_the_kernel_or_falls_back(tmp_path):
    (tmp_path / "range").write_text("40000\t50000\n")
    assert ephemeral_ports(tmp_path / "range") == (40000, 50000)
    assert ephemeral_ports(tmp_path / "missing") == EPHEMERAL_FALLBACK
    (tmp_path / "bad").write_text("nonsense")
    assert ephemeral_ports(tmp_path / "bad") == EPHEMERAL_FALLBACK


def test_a_free_port_is_below_the_ephemeral_range_and_bindable():
    low = ephemeral_ports()[0]
    ports = {free_port() for _ in range(20)}
    assert all(max(1024, low - 10000) <= p < low for p in ports)
    assert len(ports) > 1  # drawn at random, not one fixed port
    with socket.socket() as s:  # free: a server can bind it
        s.bind(("127.0.0.1", ports.pop()))
        s.listen()
        with socket.socket() as other:  # and what binding port 0 gets is another range
            other.bind(("127.0.0.1", 0))
            assert other.getsockname()[1] >= low
