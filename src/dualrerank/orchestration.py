"""Run pipeline stages through DVC's own command line, one process per stage, for the Prefect flows.

A stage runs as ``dvc repro --single-item dvc.yaml:STAGE``: DVC decides whether it changed, restores its
outputs from the run cache when it computed them before, runs ``dualrerank run STAGE`` in a child process
otherwise, and records ``dvc.lock``. So a flow run leaves the project exactly as ``dvc repro`` would, and a
stage killed by the OOM killer (or any signal) is a failed process that Prefect retries, not a dead flow.

A run with a params *overlay* (a YAML file of the keys it changes, e.g. ``params.streaming.yaml``) merges it into
``params.yaml`` for the run, as ``dvc exp run -S`` would, so DVC records the values the stages really ran with
in ``dvc.lock``; ``params.yaml`` is put back as it was afterwards (:func:`overlaid_params`). The deployments
share one work pool with a concurrency limit of one, so no other run sees the overlay.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from dualrerank.childenv import code_env
from dualrerank.config import merge, params_from_dict
from dualrerank.tracking import child_environment

TRANSIENT_MARKERS = (
    "Unable to acquire lock",  # another DVC command holds the repository
    "database is locked",  # a busy MLflow sqlite store
    "exited with -9",  # killed by a signal: OOM killer, preemption (training resumes from its checkpoint)
    "exited with 137",
    "exited with -15",
    "exited with 143",
)


class StageFailed(RuntimeError):
    """A stage's process failed; ``transient`` says whether a retry may pass."""

    def __init__(self, stage: str, returncode: int, tail: str) -> None:
        super().__init__(f"stage {stage} failed (exit {returncode}):\n{tail}")
        self.stage, self.returncode, self.tail = stage, returncode, tail
        self.transient = returncode < 0 or any(m in tail for m in TRANSIENT_MARKERS)


def dvc_command(stage: str, root: Path, force: bool = False) -> list[str]:
    """The DVC command that runs one stage of ``root/dvc.yaml`` (and nothing before it)."""
    target = f"{root.resolve() / 'dvc.yaml'}:{stage}"
    return [sys.executable, "-m", "dvc", "repro", "--single-item", *(["--force"] * force), target]


def status_of(output: str, stage: str) -> str:
    """``ran``, ``restored`` (from DVC's run cache) or ``up to date``, read from DVC's output."""
    if f"Stage '{stage}' didn't change, skipping" in output:
        return "up to date"
    if f"Stage '{stage}' is cached - skipping run, checking out outputs" in output:
        return "restored"
    return "ran"


def stage_environment() -> dict[str, str]:
    """The environment of a DVC stage process: this ``dualrerank`` first on ``PYTHONPATH``, this environment's
    commands (``dualrerank``, ``dvc``) first on ``PATH`` (also when not run through ``make``), and no tracking
    URI this process set for a project of its own."""
    env = child_environment(code_env({"DVC_NO_ANALYTICS": "1", "PYTHONUNBUFFERED": "1"}))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run_dvc_stage(stage: str, root: Path, force: bool = False) -> dict[str, Any]:
    """Run one stage in its own process, its output streamed through; raises :class:`StageFailed`."""
    t0 = time.perf_counter()
    lines: list[str] = []
    with subprocess.Popen(
        dvc_command(stage, root, force), cwd=root, env=stage_environment(), text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=1,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            lines.append(line)
    output = "".join(lines)
    if proc.returncode != 0:
        raise StageFailed(stage, proc.returncode, output[-4000:])
    return {"stage": stage, "status": status_of(output, stage), "seconds": time.perf_counter() - t0}


@contextmanager
def overlaid_params(root: Path, overlay: Path | None) -> Iterator[None]:
    """``params.yaml`` with ``overlay``'s keys merged in for the block (checked first), then exactly as before."""
    path = root / "params.yaml"
    text = path.read_text()
    if overlay is None:
        yield
        return
    merged = merge(yaml.safe_load(text), yaml.safe_load(overlay.read_text()) or {})
    params_from_dict(merged)  # a bad overlay fails here, before anything runs
    try:
        path.write_text(
            f"# params.yaml with the overlay {overlay.name} (restored after the run)\n" + yaml.safe_dump(merged)
        )
        yield
    finally:
        path.write_text(text)


def is_transient(exc: BaseException) -> bool:
    """Failures that can pass by themselves, worth a retry: a stage process killed by a signal, another DVC
    command holding the repository lock, a busy MLflow database, a network error. Not: bad data, bad params,
    bugs (the same failure would come back)."""
    if isinstance(exc, StageFailed):
        return exc.transient
    return isinstance(exc, (ConnectionError, TimeoutError)) or "database is locked" in str(exc)


def markdown_reports(root: Path, stage: str) -> list[Path]:
    """The markdown reports ``stage`` declares in ``dvc.yaml`` that exist (written by its last run: a run
    clears its outputs first), e.g. ``validation.md`` of a failed validation."""
    spec = yaml.safe_load((root / "dvc.yaml").read_text())["stages"][stage]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in spec.get("outs", [])]
    return [root / o for o in outs if str(o).endswith(".md") and (root / o).exists()]


def results_markdown(root: Path, steps: list[dict[str, Any]]) -> str:
    """The run's results: what each stage did and how long it took, the policies, the release decision."""
    lines = ["## Stages", "", "| stage | status | seconds |", "|---|---|---|"]
    lines += [f"| {s['stage']} | {s['status']} | {s.get('seconds', 0.0):.1f} |" for s in steps]
    lines.append(f"| total | | {sum(s.get('seconds', 0.0) for s in steps):.1f} |")
    metrics = root / "data/reports/metrics.json"
    if metrics.exists():
        policies = json.loads(metrics.read_text())["policies"]
        lines += ["", "## Policies (test requests)", "", "| policy | true utility | held-out evaluator utility |"]
        lines.append("|---|---|---|")
        for name, row in policies.items():
            cells = [row.get(k) for k in ("true_utility", "heldout_evaluator_utility")]
            lines.append(f"| {name} | " + " | ".join("n/a" if c is None else f"{c:.4f}" for c in cells) + " |")
    release = root / "data/reports/release.json"
    if release.exists():
        r = json.loads(release.read_text())
        verdict = "promoted to champion" if r["promoted"] else "not promoted"
        lines += ["", "## Release", "", f"Version {r['registered_version']} {verdict}: {r['reason']}."]
        lines += ["", "| check | value | rule | passed |", "|---|---|---|---|"]
        for name, c in (r.get("checks") or {}).items():
            lines.append(f"| {name} | {c.get('value')} | {c['rule']} {c['threshold']} | {c.get('passed')} |")
        lines.append(f"\nChampion: version {r['champion_version']}.")
    return "\n".join(lines) + "\n"
