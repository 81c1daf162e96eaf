"""What the studies share: where they write, JSON reports, the project's evaluation sets and judges."""

from __future__ import annotations

import datetime
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualrerank.config import Params, load_params
from dualrerank.evaluation.evalset import finite_or_null
from dualrerank.paths import Paths
from dualrerank.reranking import Judge


@dataclass(frozen=True)
class BenchPaths:
    """The benchmark's files under a project root: reports under ``data/reports/benchmark``, models under
    ``data/benchmark/models`` (never the production cycle's ``data/models``, except ``nar.ckpt`` of ``nar_nokd``)."""

    root: Path

    @property
    def project(self) -> Paths:
        return Paths(self.root)

    @property
    def reports(self) -> Path:
        return self.root / "data" / "reports" / "benchmark"

    @property
    def plots(self) -> Path:
        return self.reports / "plots"

    def report(self, name: str) -> Path:
        return self.reports / name

    def model(self, name: str) -> Path:
        return self.root / "data" / "benchmark" / "models" / f"{name}.ckpt"

    @property
    def selection(self) -> Path:
        return self.report("select.json")

    @property
    def results(self) -> Path:
        return self.report("results.json")


def params_at(root: Path) -> Params:
    return load_params(root / "params.yaml")


def git_commit(root: Path) -> dict[str, Any]:
    """``{"commit": sha or None, "dirty": bool or None}`` of the checkout at ``root`` (or a folder inside it)."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True)
        except (OSError, subprocess.CalledProcessError):
            return None
        return done.stdout.strip()

    sha = git("rev-parse", "HEAD")
    # the lock files record the runs themselves: a benchmark rewrites them as it goes, so they do not count
    locks = (":(top,exclude)dvc.lock", ":(top,exclude,glob)**/dvc.lock")
    status = git("status", "--porcelain", "--untracked-files=no", "--", ":(top)", *locks) if sha else None
    return {"commit": sha, "dirty": None if status is None else bool(status)}


def run_stamp(folder: Path) -> dict[str, Any]:
    """Which code wrote a report, and when: the commit of the checkout holding ``folder``, and the UTC time."""
    return {**git_commit(folder), "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def write_json(path: Path, obj: Any) -> Path:
    """``obj`` as JSON (NaN and infinities as null), parents created; a dict gets its ``run`` stamp, so a page
    quoting reports of different runs can say which run each came from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(obj, dict):
        obj = {**obj, "run": run_stamp(path.parent)}
    path.write_text(json.dumps(finite_or_null(obj), indent=2, allow_nan=False) + "\n")
    return path


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


def read_reports(folder: Path) -> dict[str, Any]:
    """Every ``*.json`` under ``folder`` by file stem (sorted), empty when the folder does not exist."""
    return {p.stem: read_json(p) for p in sorted(folder.glob("*.json"))} if folder.exists() else {}


def judges(paths: Paths) -> dict[str, Judge]:
    """The training evaluator and its held-out counterpart after the on-policy round (the files that exist)."""
    files = (("evaluator", paths.judge), ("heldout_evaluator", paths.heldout_judge))
    return {name: Judge.from_file(f) for name, f in files if f.exists()}
