"""The research benchmark as a Prefect flow: every stage of ``benchmarks/dvc.yaml``, each as its own process.

The plan is DVC's: the benchmark's stages (matrix and foreach expanded: ``rl@ldro-0.001``, ``drift@grpo-3``, ...)
in dependency order, each marked as changed or up to date. Every changed stage runs as
``dvc repro --single-item benchmarks/dvc.yaml:STAGE`` in a child process (one Prefect task each), so a run that
stopped resumes where it stopped (up-to-date stages are skipped, seen inputs restored from DVC's run cache).
Progress ("run i of n, ~time left") is printed and kept in a Prefect progress artifact.

Requires the production cycle's outputs (``make run``). ``python flows/benchmark.py --root DIR [--only rl select]``
runs it once (``make benchmark``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact, create_progress_artifact, update_progress_artifact

from dualrerank.benchmark.progress import benchmark_stages, only, run_in_process, run_plan

REQUIRED = ("data/processed", "data/models/student.ckpt", "data/models/evaluator_heldout_explore.ckpt")


@task(log_prints=True)
def repro(stage: str, root: str) -> None:
    """One benchmark stage, ``dvc repro --single-item``, in its own process."""
    run_in_process(Path(root))(stage)


def check_production(root: Path) -> None:
    """Fail early, with the fix, when the production cycle's outputs are missing."""
    missing = [p for p in REQUIRED if not (root / p).exists()]
    if missing:
        raise FileNotFoundError(
            f"the benchmark reads the production cycle's outputs; missing {missing}: run `make run`"
        )


@flow(name="dual-rerank-benchmark", log_prints=True)
def benchmark(root: str = ".", stages: list[str] | None = None) -> list[dict[str, Any]]:
    """Run every changed stage of the benchmark at ``root`` (``stages``: only these stage families, e.g. ``rl``)."""
    project = Path(root).resolve()
    check_production(project)
    plan = only(benchmark_stages(project), stages)
    artifact = create_progress_artifact(0.0, key="dual-rerank-benchmark-progress", description="benchmark stages")

    def report(line: str, fraction: float) -> None:
        print(line, flush=True)
        if isinstance(artifact, UUID):
            update_progress_artifact(artifact, 100.0 * fraction, description=line)

    def run(stage: str) -> None:
        repro.with_options(task_run_name=stage)(stage, str(project))

    steps = run_plan(plan, run, report)
    table = ["| stage | status | seconds |", "|---|---|---|"]
    table += [f"| {s['stage']} | {s['status']} | {s.get('seconds', 0.0):.1f} |" for s in steps]
    create_markdown_artifact("\n".join(table), key="dual-rerank-benchmark-stages", description="benchmark stages")
    return steps


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the Dual-Rerank research benchmark as a Prefect flow.")
    parser.add_argument("--root", default=".", help="project root holding params.yaml, benchmarks/dvc.yaml and data/")
    parser.add_argument("--only", nargs="+", default=None, help="only these stage families (e.g. rl select)")
    args = parser.parse_args()
    benchmark(root=args.root, stages=args.only)
