"""The documented ``make`` targets on a tiny project: every target the README and ``make help`` name exists and
expands to commands that exist (``make -n``); ``make run`` runs the production cycle to its results table, and
a second ``make run`` and ``make repro`` then do nothing; ``make run-mslr`` runs the same DVC pipeline with its
overlay (when the package registry can be reached for the data)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dualrerank.data import mslr

pytestmark = [pytest.mark.slow, pytest.mark.integration]
ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("Makefile", "prefect.yaml", "params.streaming.yaml", "params.mslr.yaml", "flows", "benchmarks")


def documented_targets() -> set[str]:
    """``make X`` named in the README and in ``make help``."""
    readme = set(re.findall(r"`make ([a-z-]+)`", (ROOT / "README.md").read_text()))
    helped = set(re.findall(r'@echo "make ([a-z-]+)', (ROOT / "Makefile").read_text()))
    return readme | helped


def make(project: Path, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    command = ["make", f"VENV={ROOT / '.venv'}", f"BIN={ROOT / '.venv' / 'bin'}", *args]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tiny_make_project(project_factory, tmp_path: Path) -> Path:
    project = project_factory(tmp_path / "project")
    for name in PROJECT_FILES:
        source = ROOT / name
        copy = shutil.copytree if source.is_dir() else shutil.copy2
        copy(source, project / name)
    shutil.copy2(ROOT / "pyproject.toml", project / "pyproject.toml")  # keeps its time: the venv is up to date
    return project


def test_every_documented_target_exists_and_expands(tiny_make_project):
    targets = documented_targets()
    assert {"run", "test", "venv", "benchmark", "serve", "run-mslr", "deploy", "worker", "lint"} <= targets
    for target in sorted(targets):
        dry = make(tiny_make_project, "-n", target)
        assert dry.returncode == 0, f"make -n {target}:\n{dry.stdout}\n{dry.stderr}"


def test_make_run_then_nothing_to_do(tiny_make_project):
    first = make(tiny_make_project, "run")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Offline evaluation on" in first.stdout and "Release checks" in first.stdout
    second = make(tiny_make_project, "run")
    log = second.stdout + second.stderr  # the flow's own lines go through Prefect's logger (stderr)
    assert second.returncode == 0 and "12 stages in" in log
    statuses = re.search(r"dual-rerank: 12 stages in [0-9]+ s: (.*)", log).group(1)  # type: ignore[union-attr]
    assert set(re.findall(r"\w+ (up to date|ran|restored)", statuses)) == {"up to date"}, statuses
    repro = make(tiny_make_project, "repro")
    assert repro.returncode == 0 and "Data and pipelines are up to date." in repro.stdout


def test_make_run_mslr_runs_the_same_pipeline_with_its_overlay(tiny_make_project):
    if not mslr.registry_reachable():
        pytest.skip(f"package registry unreachable: no {mslr.PACKAGE} to fetch")
    before = (tiny_make_project / "params.yaml").read_text()
    done = make(tiny_make_project, "run-mslr")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (tiny_make_project / "params.yaml").read_text() == before  # the overlay lasted one run
    lock = yaml.safe_load((tiny_make_project / "dvc.lock").read_text())
    assert lock["stages"]["generate"]["params"]["params.yaml"]["data.source"] == "svmlight"
    assert "explore" in lock["stages"] and "finetune" in lock["stages"]
