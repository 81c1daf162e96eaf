"""Run pipeline stages the way ``dvc repro`` does, from Python, so the Prefect flow and DVC agree.

For each stage :func:`run_recorded` asks DVC whether the stage changed (its code, data and params
against ``dvc.lock``), and if so clears its outputs, runs it through :func:`run_stage` (the same stage
function ``dualrerank run STAGE`` calls) and commits it to ``dvc.lock`` and the DVC cache, all under
DVC's repository lock. A flow run therefore leaves the project exactly as ``dvc repro`` would: a
following ``dvc repro`` has nothing to do, and a stage DVC considers up to date is not run again.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import chdir, contextmanager
from pathlib import Path
from typing import Any

import yaml

from dualrerank.config import load_params
from dualrerank.stages.runner import execute


@contextmanager
def locked_stage(root: Path, stage: str) -> Iterator[Any]:
    """DVC's view of ``stage`` in the project at ``root``, with the repository locked (as ``dvc repro`` holds it)
    and the project as the current directory (parts of DVC, like its run cache, resolve paths against it)."""
    from dvc.repo import Repo, lock_repo

    with chdir(root), Repo(str(root)) as repo, lock_repo(repo):
        yield repo, repo.stage.get_target(dvc_target(root, stage))


def dvc_target(root: Path, stage: str) -> str:
    """``/abs/root/dvc.yaml:stage``: DVC resolves a bare stage name against the current directory."""
    return f"{root.resolve() / 'dvc.yaml'}:{stage}"


def lock_entry(root: Path, stage: str) -> dict[str, Any] | None:
    lock = root / "dvc.lock"
    return (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).get(stage) if lock.exists() else None


def fingerprint(root: Path, stage: str) -> str | None:
    """A key for ``stage``'s current state (its ``dvc.lock`` entry: code, data, params and outputs) when DVC
    says the stage is up to date, else ``None``: a cache key that is only ever reused for identical work.
    ``None`` too while another DVC command holds the repository: the stage itself then fails and retries."""
    from dvc.lock import LockError

    try:
        with locked_stage(root, stage) as (_, dvc_stage):
            if dvc_stage.changed():
                return None
    except LockError:
        return None
    entry = json.dumps(lock_entry(root, stage), sort_keys=True, default=str)
    return f"{stage}-{hashlib.md5(entry.encode()).hexdigest()}"


def run_stage(stage: str, root: Path) -> dict[str, Any]:
    """Run one stage's function. Data-parallel training (``devices`` x ``num_nodes`` > 1) runs as its own
    ``dualrerank run`` process instead: Lightning's DDP launcher starts the other ranks by re-running the
    command line, which must be the stage's, not the flow's."""
    common = load_params(root / "params.yaml").common
    if common.devices * common.num_nodes > 1:
        command = [sys.executable, "-m", "dualrerank.cli", "--root", str(root), "run", stage]
        subprocess.run(command, check=True)
        return {}
    return execute(stage, root=root)


def run_recorded(stage: str, root: Path, force: bool = False) -> dict[str, Any]:
    """Run ``stage`` unless DVC says it is up to date (or ``force``), then record it in ``dvc.lock``."""
    with locked_stage(root, stage) as (repo, dvc_stage):
        if not force and not dvc_stage.changed():
            return {"stage": stage, "status": "up to date"}
        dvc_stage.remove_outs(ignore_remove=False, force=False)  # as dvc repro: no stale files in outputs
        result = run_stage(stage, root)
        repo.commit(dvc_target(root, stage), force=True)
    return {"stage": stage, "status": "ran", **result}


def is_transient(exc: BaseException) -> bool:
    """Failures that can pass by themselves, worth a retry: another DVC command holding the repository lock,
    a busy MLflow database, a network error to a tracking server or remote, a stage process killed by a
    signal (OOM killer, preemption; training resumes from its checkpoint). Not: bad data, bad params, bugs."""
    from dvc.lock import LockError

    if isinstance(exc, subprocess.CalledProcessError):
        return exc.returncode < 0
    return isinstance(exc, (LockError, ConnectionError, TimeoutError)) or "database is locked" in str(exc)


def markdown_reports(root: Path, stage: str) -> list[Path]:
    """The markdown reports ``stage`` declares in ``dvc.yaml`` that exist (written by its last run: a run
    clears its outputs first), e.g. ``validation.md`` of a failed validation."""
    spec = yaml.safe_load((root / "dvc.yaml").read_text())["stages"][stage]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in spec.get("outs", [])]
    return [root / o for o in outs if str(o).endswith(".md") and (root / o).exists()]


def results_markdown(root: Path, steps: list[dict[str, Any]]) -> str:
    """The run's results: what each stage did, the policies' held-out figures and the release decision."""
    lines = ["## Stages", "", "| stage | status | seconds |", "|---|---|---|"]
    lines += [f"| {s['stage']} | {s['status']} | {s.get('seconds', 0.0):.1f} |" for s in steps]
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
        lines.append(f"Champion: version {r['champion_version']}.")
    return "\n".join(lines) + "\n"
