"""Repository checks that cannot run as CI itself here: the workflow file passes ``actionlint``, and the module
boundaries of docs/architecture.md (import-linter contracts in ``pyproject.toml``) hold."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name if (BIN / name).exists() else shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed: `make venv` installs the dev extras")
    return str(path)


def test_ci_workflow_passes_actionlint():
    out = subprocess.run([tool("actionlint"), "-no-color", ".github/workflows/ci.yml"], cwd=ROOT, capture_output=True)
    assert out.returncode == 0, out.stdout.decode() + out.stderr.decode()


def test_ci_workflow_lints_type_checks_and_tests_on_every_push_and_pull_request():
    import yaml

    wf = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    triggers = wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True
    assert {"push", "pull_request"} <= set(triggers)
    steps = " ".join(s.get("run", "") for job in wf["jobs"].values() for s in job["steps"])
    assert all(cmd in steps for cmd in ("ruff check", "mypy", "lint-imports", "make test"))


def test_actionlint_rejects_a_broken_workflow(tmp_path):
    """The check can fail: an unknown runner label and a bad expression are reported."""
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latst\n    steps:\n      - run: echo ${{ github.nope( }}\n"
    )
    out = subprocess.run([tool("actionlint"), "-no-color", str(bad)], capture_output=True)
    assert out.returncode != 0


def test_module_boundaries_hold():
    out = subprocess.run([tool("lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    assert f"{len(contracts)} kept, 0 broken" in out.stdout


def test_every_package_directory_is_a_regular_package():
    """import-linter (and mypy) see only regular packages: every source folder has an ``__init__.py``."""
    src = ROOT / "src" / "dualrerank"
    folders = [d for d in src.rglob("*") if d.is_dir() and d.name != "__pycache__"]
    assert [str(d) for d in folders if not (d / "__init__.py").exists()] == []
