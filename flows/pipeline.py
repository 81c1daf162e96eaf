"""The Dual-Rerank production cycle as a Prefect flow: the stages of ``dvc.yaml``, in the same order, one task each.

Each task runs its stage in its own process through DVC (``dvc repro --single-item dvc.yaml:STAGE``, see
:mod:`dualrerank.orchestration`): DVC skips a stage whose inputs did not change, restores one it computed
before from its run cache, and records ``dvc.lock``, so the flow and ``dvc repro`` agree. A stage process
killed by a signal (the OOM killer, a preemption) or a busy lock is retried; bad data or a bug is not. A
failed quality gate is an outcome, not a failure: the flow finishes, the results artifact and ``dualrerank
summary`` show the gate's checks, and the previous champion stays served.

Parameters only select *what* to run: ``params.yaml`` under ``root`` is the one source of parameters, and an
``overlay`` file (e.g. ``params.streaming.yaml``) changes keys for one run: merged into ``params.yaml`` while the
run lasts (so ``dvc.lock`` records what ran), then put back. ``python flows/pipeline.py`` runs it once.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from dualrerank.config import load_params
from dualrerank.orchestration import is_transient, markdown_reports, overlaid_params, results_markdown, run_dvc_stage
from dualrerank.stages import STAGES

DATA_STAGES = ("generate", "validate")  # always checked: new logs must be ingested and validated


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    return is_transient(state.result(raise_on_failure=False))


@task(retries=2, retry_delay_seconds=[10, 60], retry_condition_fn=retry_if_transient, log_prints=True)
def run_stage(stage: str, root: str, force: bool = False) -> dict[str, Any]:
    """Run one stage in its own process (DVC skips it if nothing changed); attach its report if it fails."""
    try:
        return run_dvc_stage(stage, Path(root), force)
    except Exception:
        for report in markdown_reports(Path(root), stage):
            key = f"{stage}-report".replace("_", "-")
            create_markdown_artifact(report.read_text(), key=key, description=f"{stage} failed: {report.name}")
        raise


TASKS = {stage: run_stage.with_options(name=stage, task_run_name=stage) for stage in STAGES}


@task
def publish_results(root: str, steps: list[dict[str, Any]]) -> None:
    """The results table as a markdown artifact: what each stage did, the policies, the release decision."""
    create_markdown_artifact(results_markdown(Path(root), steps), key="dual-rerank-results", description="results")


@flow(name="dual-rerank", log_prints=True)
def pipeline(
    root: str = ".", refresh_data: bool = False, retrain_from: str | None = None, overlay: str | None = None
) -> list[dict[str, Any]]:
    """Run every stage of the project at ``root`` that DVC says changed.

    ``refresh_data``: rerun ``generate`` (re-ingest the source) even if its inputs look unchanged; later
    stages rerun only if the logs did change. ``retrain_from``: reuse the trained models of the stages
    between the data stages and this stage as they are, e.g. ``finetune`` for a streaming fine-tune.
    ``overlay``: a params file (relative to ``root``) whose keys this run changes, e.g. ``finetune.init``.
    """
    project = Path(root).resolve()
    extra = project / overlay if overlay else None
    load_params(project / "params.yaml", extra)  # bad parameters fail here, before any work
    if retrain_from is not None and retrain_from not in STAGES:
        raise ValueError(f"retrain_from={retrain_from!r} is not a stage; stages are {list(STAGES)}")
    start = STAGES.index(retrain_from) if retrain_from else 0
    steps: list[dict[str, Any]] = []
    with overlaid_params(project, extra):
        for i, (stage, stage_task) in enumerate(TASKS.items()):
            if i < start and stage not in DATA_STAGES:
                steps.append({"stage": stage, "status": "reused"})
                continue
            steps.append(stage_task(stage, str(project), force=refresh_data and stage == "generate"))
    publish_results(str(project), steps)
    total = sum(s.get("seconds", 0.0) for s in steps)
    print(
        f"dual-rerank: {len(steps)} stages in {total:.0f} s: " + ", ".join(f"{s['stage']} {s['status']}" for s in steps)
    )
    return steps


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the Dual-Rerank production cycle as a Prefect flow.")
    parser.add_argument("--root", default=".", help="project root holding params.yaml, dvc.yaml and data/")
    parser.add_argument("--refresh-data", action="store_true", help="re-ingest the source logs")
    parser.add_argument("--retrain-from", default=None, help="reuse the models trained before this stage")
    parser.add_argument("--overlay", default=None, help="params file whose keys this run changes")
    args = parser.parse_args()
    pipeline(root=args.root, refresh_data=args.refresh_data, retrain_from=args.retrain_from, overlay=args.overlay)
