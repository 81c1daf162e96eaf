"""The live loop on a tiny project, with its faults injected: a service killed mid-round, the learner killed
mid-round, a corrupt partition and a challenger worse than the serving version. Every round completes or fails
cleanly and a rerun finishes it on the same log store: no impression lost or duplicated, no worse model promoted.

The arms' services are real ``bentoml serve`` processes, so these tests take a while (service start-up)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import bentoml
import pandas as pd
import pytest
import torch
import yaml

from dualrerank import registry
from dualrerank.config import load_params
from dualrerank.live.loop import Faults, LearnerKilled, LiveLoop
from dualrerank.serving.store import LIVE_MODEL_NAME, MODEL_NAME

LIVE = {
    "rounds": 2,
    "requests_per_round": 60,
    "arms": ["control", "ldro"],
    "window": 40,
    "gate_requests": 16,
    "evaluator_epochs": 1,
    "evaluator_val_requests": 12,
    "replay_rounds": 1,
    "n_samples": 4,
    "chunk": 20,
    "drift": {"round": 1, "watch_scale": 0.3, "sat_prob": 0.85},
}


def live_project(root: Path, **changes: object) -> Path:
    raw = yaml.safe_load((root / "params.yaml").read_text())
    raw["live"].update(LIVE, **changes)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    return root


def loop(root: Path, faults: Faults | None = None) -> LiveLoop:
    return LiveLoop(load_params(root / "params.yaml"), root, faults)


def rows(report: dict, arm: str) -> list[dict]:
    return [r for r in report["rounds"] if r["arm"] == arm]


@pytest.mark.integration
def test_a_killed_service_and_a_killed_learner_lose_and_duplicate_nothing(project_copy):
    root = live_project(project_copy, min_improvement=-1.0e9)  # every challenger wins: each round swaps a service
    killed: list[int] = []

    def kill_ldro_service(r: int, chunk: int, services) -> None:
        if (r, chunk) == (0, 0):  # the whole service: its worker (BentoML starts it in a session of its own) too
            proc = services.route("ldro").proc
            ps = subprocess.run(["ps", "-o", "pid=", "--ppid", str(proc.pid)], capture_output=True, text=True)
            for pid in [int(p) for p in ps.stdout.split()] + [proc.pid]:
                os.kill(pid, signal.SIGKILL)
            killed.append(proc.pid)

    def kill_learner(r: int, arm: str, net) -> None:
        raise LearnerKilled(f"round {r}: {arm}'s learner killed")

    first = loop(root, Faults(after_chunk=kill_ldro_service, challenger=kill_learner))
    with pytest.raises(LearnerKilled):
        first.run()
    assert killed and first.services.routes == {}  # the round failed cleanly: services stopped
    logged = pd.read_parquet(first.store.partition(0))
    assert logged["request_id"].nunique() == 60  # the traffic of the round was complete before the learner died

    report = loop(root).run()  # the rerun: round 0 goes on from its learning, round 1 runs whole
    again = pd.read_parquet(first.store.partition(0))
    pd.testing.assert_frame_equal(again, logged)  # nothing served or logged twice
    assert report["lost_impressions"] == 0 and report["duplicated_impressions"] == 0
    assert [r["round"] for r in rows(report, "ldro")] == [0, 1]
    assert rows(report, "ldro")[0]["failed_requests"] >= 1  # the injected fault, counted
    assert rows(report, "ldro")[1]["failed_requests"] == 0
    assert all(r["failed_requests"] == 0 for r in rows(report, "control"))
    # the report reproduces control's pages in process (draws keyed by request), even across the restart
    assert all(r["same_page_as_control"] >= 0.95 for r in rows(report, "control"))
    assert rows(report, "ldro")[0]["same_page_as_control"] >= 0.95  # round 0: every arm serves the same version
    assert sum(r["requests"] for r in report["rounds"]) == 120
    swaps = [report["learning"][str(r)]["ldro"]["swap"] for r in (0, 1)]
    assert all(s["failed"] == 0 and s["probes"] > 0 for s in swaps)  # no request failed during a swap
    # round 1 was served by the version round 0 promoted, through its alias and its own service process
    promoted = report["learning"]["0"]["ldro"]["registered_version"]
    assert rows(report, "ldro")[1]["version"] == promoted
    assert rows(report, "ldro")[1]["model_version"].endswith(f"+mlflow-v{promoted}")
    # the loop's versions have their own BentoML name: `bentoml serve` without a tag keeps serving the production
    # cycle's package, never a live challenger
    assert rows(report, "ldro")[1]["model_version"].startswith(f"{LIVE_MODEL_NAME}:")
    assert all("data/live" not in str(m.info.metadata.get("sources")) for m in bentoml.models.list(MODEL_NAME))
    params = load_params(root / "params.yaml")
    assert (
        str(registry.by_alias(params, "live-ldro", root).version)
        == report["learning"]["1"]["ldro"]["registered_version"]
    )
    assert (root / "data/reports/live.json").exists() and (root / "data/reports/plots/live.png").exists()


@pytest.mark.integration
def test_a_corrupt_partition_is_quarantined_and_a_worse_challenger_is_not_promoted(project_copy):
    root = live_project(project_copy)

    def corrupt(r: int, path: Path) -> None:
        if r == 0:
            table = pd.read_parquet(path)
            table.loc[table["logged_position"].notna(), "watch_time"] = -5.0
            table.to_parquet(path)

    def worse(r: int, arm: str, net) -> None:  # the challenger ranks every list backwards
        with torch.no_grad():
            net.w_p.weight.neg_()
            net.w_p.bias.neg_()

    live = loop(root, Faults(before_validation=corrupt, challenger=worse))
    report = live.run()
    assert report["validation"] == {"0": "quarantined", "1": "passed"}
    quarantine = live.store.quarantined(0)
    assert quarantine.exists() and "watch_time" in (quarantine.parent / "report.md").read_text()
    assert live.store.rounds() == [1] and report["lost_impressions"] == 0  # kept, only out of the dataset
    assert report["learning"]["0"] == {}  # nothing learned from a bad partition
    verdict = report["learning"]["1"]["ldro"]
    assert verdict["gate"]["gain"] < 0 and not verdict["promoted"]
    start = rows(report, "ldro")[0]["version"]
    params = load_params(root / "params.yaml")
    assert str(registry.by_alias(params, "live-ldro", root).version) == start  # the alias did not move
    assert live.state["arms"]["ldro"]["version"] == start
    assert all(r["failed_requests"] == 0 for r in report["rounds"])


@pytest.mark.slow
@pytest.mark.integration
def test_the_flow_plays_one_round_per_run_and_resumes(project_copy, prefect_api):
    import importlib.util

    spec = importlib.util.spec_from_file_location("live_flow", Path(__file__).resolve().parents[2] / "flows/live.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    root = live_project(project_copy)
    first = module.live(root=str(root), rounds=1)
    assert [r["round"] for r in first["rounds"]] == [0, 0]
    second = module.live(root=str(root), rounds=1)  # the deployment's hourly run: the next round only
    assert sorted({r["round"] for r in second["rounds"]}) == [0, 1]
    assert second["lost_impressions"] == 0 and second["duplicated_impressions"] == 0
    assert (root / "data/live/impressions.dvc").exists()  # the log store's version, recorded by DVC
