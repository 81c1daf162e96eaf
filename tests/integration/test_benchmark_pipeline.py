"""The benchmark's DVC pipeline on a tiny project: it parses, DVC expands its grids and seeds from params.yaml,
and the flow's plan lists every expanded stage after the stages it reads from."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bench_tiny import bench_project
from dualrerank.benchmark.progress import benchmark_stages


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bool]]:
    return benchmark_stages(bench_project(tmp_path_factory.mktemp("bench")))


@pytest.mark.integration
def test_matrix_expands_to_method_by_lr_and_seed_stages(plan):
    names = [n for n, _ in plan]
    assert [n for n in names if n.startswith("rl@")] == [
        "rl@ldro-0.001",
        "rl@ldro-0.003",
        "rl@grpo-0.001",
        "rl@grpo-0.003",
    ]
    assert [n for n in names if n.startswith("seeds@")] == ["seeds@ldro-1", "seeds@grpo-1"]
    assert sorted(n for n in names if n.startswith("drift@")) == [
        "drift@grpo-0",
        "drift@grpo-1",
        "drift@ldro-0",
        "drift@ldro-1",
    ]
    assert [n for n in names if n.startswith("scaling@")] == ["scaling@1", "scaling@2"]
    assert all(changed for _, changed in plan)  # nothing has run in the tiny project


@pytest.mark.integration
def test_plan_orders_every_stage_after_what_it_reads(plan):
    pos = {n: i for i, (n, _) in enumerate(plan)}
    assert max(pos[n] for n in pos if n.startswith("rl@")) < pos["select"]
    assert pos["select"] < min(pos[n] for n in pos if n.startswith(("seeds@", "drift@")))
    assert max(pos[n] for n in pos if n.startswith("seeds@")) < pos["finetune_report"]
    assert max(pos[n] for n in pos if n.startswith("drift@")) < pos["drift_report"]
    assert pos["nar_nokd"] < pos["evaluate"] and pos["scaling_report"] < pos["summary"]


def test_benchmark_stages_write_only_under_the_benchmark_folders():
    spec = yaml.safe_load((Path(__file__).resolve().parents[2] / "benchmarks" / "dvc.yaml").read_text())
    for name, stage in spec["stages"].items():
        body = stage.get("do", stage)
        assert body["wdir"] == "..", name
        for kind in ("outs", "metrics", "plots"):
            for out in body.get(kind, []):
                path = next(iter(out)) if isinstance(out, dict) else out
                ok = path.startswith(("data/reports/benchmark/", "data/benchmark/")) or path == "data/models/nar.ckpt"
                assert ok, (name, path)
