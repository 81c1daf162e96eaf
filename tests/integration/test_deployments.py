"""The deployments of ``prefect.yaml`` against a real local Prefect server: ``prefect deploy`` registers
them, a process worker picks up a triggered run of the nightly retrain on a tiny project, and it completes;
then the streaming deployment runs twice on newer requests, each time one LDRO run from the champion.

Everything runs as the README's commands do, in subprocesses with their own ``PREFECT_HOME`` and API URL;
the server's scheduler is off, so the cron schedules cannot start runs of their own during the test.
"""

from __future__ import annotations

import json
import os
import shutil
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


def finetune_runs(project: Path) -> list[dict[str, str]]:
    """Tags of the project's MLflow runs of stage ``finetune``, oldest first."""
    from dualrerank import registry
    from dualrerank.config import load_params

    params = load_params(project / "params.yaml")
    client = registry.client(params, project)
    experiment = client.get_experiment_by_name(params.common.mlflow_experiment)
    runs = client.search_runs([experiment.experiment_id], "tags.started_from != ''", order_by=["start_time ASC"])
    return [r.data.tags for r in runs]


def test_a_deployed_nightly_retrain_runs_to_completion_on_a_worker(prefect_env, project_factory, tmp_path):
    env = prefect_env
    pool = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"][0]["work_pool"]["name"]
    prefect(env, "work-pool", "create", pool, "--type", "process")
    prefect(env, "work-pool", "set-concurrency-limit", pool, "1")
    deployed = prefect(env, "--no-prompt", "deploy", "--all")
    assert "nightly-retrain" in deployed and "streaming-finetune" in deployed
    # a reachable gate, so that the nightly run releases a champion for the streaming runs to start from
    project = project_factory(tmp_path / "project", **{"evaluate.gate": {"candidate_n_samples": 4,
                              "min_gain_vs_baseline": -1.0e9, "max_latency_ms_p99": 1.0e9}})  # fmt: skip
    shutil.copy(ROOT / "params.streaming.yaml", project / "params.streaming.yaml")

    worker_log = open(tmp_path / "worker.log", "w")  # noqa: SIM115 - closed below
    worker = subprocess.Popen(
        [*PREFECT, "worker", "start", "--pool", pool, "--type", "process"],
        cwd=ROOT,
        env=env,
        stdout=worker_log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    streamed = []
    try:
        params = json.dumps({"root": str(project), "refresh_data": False})
        run = ("deployment", "run", "dual-rerank/nightly-retrain", "--params", params, "--watch")
        out = prefect(env, *run, timeout=1800)
        assert "Flow run finished successfully in 'Completed'" in out, out
        lock = yaml.safe_load((project / "dvc.lock").read_text())
        assert list(lock["stages"]) == list(STAGES)
        release = json.loads((project / "data/reports/release.json").read_text())
        assert release["registered_version"] == "1" and release["promoted"], release
        for n_train in (200, 240):  # the stream goes on: newer requests arrive between the streaming runs
            edit = yaml.safe_load((project / "params.yaml").read_text())
            edit["world"]["n_train_requests"] = n_train
            (project / "params.yaml").write_text(yaml.safe_dump(edit))
            champion = json.loads((project / "data/reports/release.json").read_text())["champion_version"]
            # the deployment's own parameters, only the root pointed at the tiny project
            streaming = next(d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]
                             if d["name"] == "streaming-finetune")  # fmt: skip
            params = json.dumps({**streaming["parameters"], "root": str(project)})
            run = ("deployment", "run", "dual-rerank/streaming-finetune", "--params", params, "--watch")
            out = prefect(env, *run, timeout=1800)
            assert "Flow run finished successfully in 'Completed'" in out, out
            report = json.loads((project / "data/reports/finetune.json").read_text())
            streamed.append((champion, report))
            assert yaml.safe_load((project / "params.yaml").read_text())["finetune"]["init"] == "distilled"
    finally:
        stop(worker)
        worker_log.close()

    for champion, report in streamed:  # each streaming run: one LDRO run, from the champion of its time
        assert report["method"] == "ldro" and report["started_from"] == f"champion version {champion}", report
    tags = finetune_runs(project)
    assert [t["started_from"] for t in tags] == ["distilled student"] + [f"champion version {c}" for c, _ in streamed]
    assert [t["finetune.init"] for t in tags] == ["distilled", "champion", "champion"]
