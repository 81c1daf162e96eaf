"""The deployments of ``prefect.yaml`` against a real local Prefect server: ``prefect deploy`` registers
them, a process worker picks up a triggered run of the nightly retrain on a tiny project, and it completes.

Everything runs as the README's commands do, in subprocesses with their own ``PREFECT_HOME`` and API URL;
the server's scheduler is off, so the cron schedules cannot start runs of their own during the test.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dualrerank.stages import STAGES

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
PREFECT = [sys.executable, "-m", "prefect"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, "the Prefect server exited while starting"
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"Prefect server at {url} not healthy after {timeout} s")


def stop(process: subprocess.Popen) -> None:
    """Stop a process we started and everything it started (it leads its own session)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def prefect_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A Prefect server on a free port, with its own home; stopped (with its children) afterwards."""
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(ROOT / "src"),
    }
    log = open(tmp_path / "server.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_healthy(env["PREFECT_API_URL"], server)
        yield env
    finally:
        stop(server)
        log.close()


def prefect(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    done = subprocess.run([*PREFECT, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"prefect {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_a_deployed_nightly_retrain_runs_to_completion_on_a_worker(prefect_env, project_factory, tmp_path):
    env = prefect_env
    pool = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"][0]["work_pool"]["name"]
    prefect(env, "work-pool", "create", pool, "--type", "process")
    deployed = prefect(env, "--no-prompt", "deploy", "--all")
    assert "nightly-retrain" in deployed and "streaming-finetune" in deployed
    project = project_factory(tmp_path / "project")

    worker_log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [*PREFECT, "worker", "start", "--pool", pool, "--type", "process"],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        params = json.dumps({"root": str(project), "refresh_data": False})
        run = ("deployment", "run", "dual-rerank/nightly-retrain", "--params", params, "--watch")
        out = prefect(env, *run, timeout=1800)
    finally:
        stop(worker)
        worker_log.close()

    assert "Flow run finished successfully in 'Completed'" in out, out
    lock = yaml.safe_load((project / "dvc.lock").read_text())
    assert list(lock["stages"]) == list(STAGES)
    assert json.loads((project / "data/reports/release.json").read_text())["registered_version"] == "1"
