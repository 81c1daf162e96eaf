"""The benchmark flow's plan and progress: which stages of ``benchmarks/dvc.yaml`` still have to run, in what
order, and how long the rest will take. Pure functions over stage names and times, plus DVC's view of the stages.

A stage DVC says is up to date is skipped (its outputs match its inputs), so a run that stopped resumes where it
stopped; a stage that reruns with inputs DVC has seen before is restored from DVC's run cache.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from contextlib import chdir
from dataclasses import dataclass, field
from pathlib import Path

from dualrerank.orchestration import stage_environment

DVCFILE = "benchmarks/dvc.yaml"


def family(stage: str) -> str:
    """``rl@ldro-0.001`` -> ``rl``: the stage before matrix/foreach expansion."""
    return stage.split("@", 1)[0]


def benchmark_stages(root: Path) -> list[tuple[str, bool]]:
    """``(expanded name, will run)`` of every stage of ``benchmarks/dvc.yaml``, in dependency order (file order
    among stages with no order between them). A stage will run when ``dvc status`` says it changed, or when a
    stage it reads will run (its inputs are about to change)."""
    from dvc.repo import Repo

    with chdir(root), Repo(str(root)) as repo:  # the stage graph only; stages run through `dvc repro`
        stages = [s for s in repo.index.stages if s.dvcfile.relpath == DVCFILE]
        order = {s.name: i for i, s in enumerate(stages)}
        graph = repo.index.graph
        deps = {s.name: upstream(graph, stages, s.name) for s in stages}
    ordered = topological(list(deps), deps.__getitem__, order)
    return list(zip(ordered, will_run(ordered, deps, stale_stages(root))))


def stale_stages(root: Path) -> set[str]:
    """Benchmark stages ``dvc status`` reports as changed (stale or missing inputs or outputs)."""
    import json

    cmd = [sys.executable, "-m", "dvc", "status", "--json", DVCFILE]
    out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, check=True).stdout
    report = json.loads(out or "{}")
    return {key.split(":", 1)[1] for key in report if key.startswith(f"{DVCFILE}:")}


def will_run(ordered: list[str], deps: dict[str, list[str]], stale: set[str]) -> list[bool]:
    """Per stage of ``ordered`` (dependencies first): stale itself, or downstream of a stage that will run."""
    running: set[str] = set()
    for name in ordered:
        if name in stale or any(d in running for d in deps[name]):
            running.add(name)
    return [name in running for name in ordered]


def upstream(graph, stages, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    """The benchmark stages ``name`` depends on directly (DVC's graph: edges from a stage to its dependencies)."""
    stage = next(s for s in stages if s.name == name)
    return [d.name for d in graph.successors(stage) if d.dvcfile.relpath == DVCFILE]


def topological(names: list[str], deps: Callable[[str], Iterable[str]], order: dict[str, int]) -> list[str]:
    """``names`` with every stage after its dependencies; ties keep the ``order`` given."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(n: str) -> None:
        if n in seen:
            return
        seen.add(n)
        for d in sorted(deps(n), key=lambda x: order.get(x, 0)):
            visit(d)
        done.append(n)

    for n in sorted(names, key=lambda x: order[x]):
        visit(n)
    return done


@dataclass
class Progress:
    """Times of the stages run so far, for the "run i of n, ~time left" line."""

    total: int
    seconds: dict[str, float] = field(default_factory=dict)

    def done(self, stage: str, seconds: float) -> None:
        self.seconds[stage] = seconds

    def estimate(self, stage: str) -> float | None:
        """Seconds a pending stage will take: the mean of its family's runs, else of all runs, else None."""
        same = [s for name, s in self.seconds.items() if family(name) == family(stage)]
        pool = same or list(self.seconds.values())
        return sum(pool) / len(pool) if pool else None

    def left(self, pending: list[str]) -> float | None:
        """Estimated seconds for ``pending``; None before any stage has run."""
        if not self.seconds:
            return None
        return sum(self.estimate(s) or 0.0 for s in pending)

    def line(self, index: int, stage: str, pending: list[str]) -> str:
        """``run i of n: STAGE, ~time left`` (``index`` counts from 1; ``pending``: this stage and the later)."""
        left = self.left(pending)
        eta = "time left unknown yet" if left is None else f"~{duration(left)} left"
        return f"benchmark: run {index} of {self.total}: {stage} ({eta})"


def duration(seconds: float) -> str:
    """``95`` -> ``1 min 35 s``; ``4000`` -> ``1 h 6 min``."""
    s = round(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60} min"


def repro_command(stage: str) -> list[str]:
    """One stage as its own process; DVC restores it from the run cache when it has run with these inputs."""
    return [sys.executable, "-m", "dvc", "repro", "--single-item", f"{DVCFILE}:{stage}"]  # this environment's DVC


def only(plan: list[tuple[str, bool]], families: Iterable[str] | None) -> list[tuple[str, bool]]:
    """The stages of ``plan`` whose family is in ``families`` (all of them for None)."""
    keep = None if families is None else set(families)
    return [(n, c) for n, c in plan if keep is None or family(n) in keep]


def run_plan(
    plan: list[tuple[str, bool]],
    run: Callable[[str], None],
    report: Callable[[str, float], None] = lambda line, fraction: print(line, flush=True),
    clock: Callable[[], float] = time.perf_counter,
) -> list[dict[str, object]]:
    """Run the changed stages of ``plan`` in order with ``run(stage)``, reporting ``(line, fraction done)`` before
    each and at the end; up-to-date stages are recorded as such and not run. Stops at the first failure (raised)."""
    pending = [name for name, changed in plan if changed]
    progress = Progress(len(pending))
    steps: list[dict[str, object]] = [{"stage": n, "status": "up to date"} for n, changed in plan if not changed]
    for i, stage in enumerate(pending):
        report(progress.line(i + 1, stage, pending[i:]), i / max(len(pending), 1))
        t0 = clock()
        run(stage)
        progress.done(stage, clock() - t0)
        steps.append({"stage": stage, "status": "ran", "seconds": progress.seconds[stage]})
    report(f"benchmark: {len(pending)} stage(s) ran, {len(plan) - len(pending)} up to date", 1.0)
    return steps


def run_in_process(root: Path) -> Callable[[str], None]:
    """``run(stage)``: ``dvc repro --single-item`` of that stage in a child process at ``root``."""

    def run(stage: str) -> None:
        subprocess.run(repro_command(stage), cwd=root, check=True, env=stage_environment())

    return run
