"""Study ``scaling``: the production cycle's stage times and peak memory at ``--factor`` times the training requests.

A scratch project (``data/benchmark/scaling/x<factor>/``, removed afterwards) gets the root ``params.yaml`` with
``world.n_train_requests`` multiplied and every supervised model capped at ``benchmark.scaling.max_epochs``
epochs; each stage of the root ``dvc.yaml`` (in its order, but ``SKIPPED``) then runs as its own
``dualrerank run STAGE --no-mlflow`` process. Per stage: wall seconds, and the process's peak resident memory
(``wait4``'s ``ru_maxrss``: the stage process alone, children included only when they are waited for).
Writes ``data/reports/benchmark/scaling/x<factor>.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from dualrerank.benchmark.common import BenchPaths, write_json

# release and package write the MLflow registry and the Bento store the production project shares
SKIPPED = ("release", "package")
SUPERVISED = ("train_teacher", "train_nar", "distill", "train_evaluator", "train_pointwise")


def scaled_params(raw: dict[str, Any], factor: int, max_epochs: int) -> dict[str, Any]:
    """A copy of the ``params.yaml`` mapping ``raw`` at ``factor`` x the training requests, epochs capped."""
    out = yaml.safe_load(yaml.safe_dump(raw))  # a deep copy of plain data
    out["world"]["n_train_requests"] = int(raw["world"]["n_train_requests"]) * factor
    out["common"]["progress"] = False
    for section in SUPERVISED:
        if section in out and "optim" in out[section]:
            optim = out[section]["optim"]
            optim["max_epochs"] = min(int(optim["max_epochs"]), max_epochs)
    out["explore"]["refit_epochs"] = min(int(out["explore"]["refit_epochs"]), max_epochs)  # the round's refits
    return out


def production_stages(root: Path) -> list[str]:
    """The root ``dvc.yaml``'s stages in file order (the production cycle's order), minus ``SKIPPED``."""
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    return [s for s in stages if s not in SKIPPED]


def measured(command: list[str], cwd: Path) -> dict[str, float | int]:
    """Run ``command``; its wall seconds, exit status and peak resident memory in MiB (Linux: KiB in rusage)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    scale = 1 / 1024 if platform.system() == "Linux" else 1 / 2**20  # macOS reports bytes
    return {
        "seconds": time.perf_counter() - t0,
        "returncode": proc.returncode,
        "peak_rss_mib": usage.ru_maxrss * scale,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def run_factor(root: Path, factor: int, max_epochs: int, keep: bool = False) -> dict[str, Any]:
    """Every production stage in a scratch project at ``factor``; stops at the first failing stage."""
    scratch = root / "data" / "benchmark" / "scaling" / f"x{factor}"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    raw = scaled_params(yaml.safe_load((root / "params.yaml").read_text()), factor, max_epochs)
    (scratch / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    rows: list[dict[str, Any]] = []
    try:
        for stage in production_stages(root):
            command = [sys.executable, "-m", "dualrerank.cli", "--root", str(scratch), "run", stage, "--no-mlflow"]
            rows.append({"stage": stage, **measured(command, scratch)})
            print(f"bench scaling: x{factor} {stage}: {rows[-1]['seconds']:.1f} s", flush=True)
            if rows[-1]["returncode"] != 0:
                break
    finally:
        if not keep:
            shutil.rmtree(scratch, ignore_errors=True)
    return {
        "factor": factor,
        "n_train_requests": raw["world"]["n_train_requests"],
        "max_epochs": max_epochs,
        "stages": rows,
        "total_seconds": sum(r["seconds"] for r in rows),
        "peak_rss_mib": max((r["peak_rss_mib"] for r in rows), default=0.0),
        "completed": bool(rows) and all(r["returncode"] == 0 for r in rows),
    }


def main(argv: list[str], root: Path) -> int:
    from dualrerank.benchmark.common import params_at

    p = argparse.ArgumentParser(prog="dualrerank bench scaling", description=__doc__)
    p.add_argument("--factor", type=int, required=True, help="multiple of world.n_train_requests")
    p.add_argument("--keep", action="store_true", help="keep the scratch project")
    args = p.parse_args(argv)
    result = run_factor(root, args.factor, params_at(root).benchmark.scaling.max_epochs, args.keep)
    out = write_json(BenchPaths(root).report(f"scaling/x{args.factor}.json"), result)
    print(f"bench scaling: x{args.factor} in {result['total_seconds']:.1f} s: {out}")
    return 0 if result["completed"] else 1
