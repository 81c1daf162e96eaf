"""The Dual-Rerank pipeline as a Prefect flow: the stages of ``dvc.yaml``, in the same order, one task each.

A task runs its stage with :func:`dualrerank.orchestration.run_recorded`: the stage function that
``dualrerank run STAGE`` (and so ``dvc repro``) calls, skipped when DVC says the stage is up to date and
recorded in ``dvc.lock`` when it ran, so the two runners agree. Prefect adds retries of transient
failures, a cache keyed on DVC's fingerprint of each stage's inputs, artifacts (the results table; the
report of a failed stage, e.g. the validation report), schedules and work pools (``prefect.yaml``).

Parameters only select *what* to run, never *how*: ``params.yaml`` under ``root`` is the one source of
parameters. ``python flows/pipeline.py --root DIR`` runs it once (``make run``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact

from dualrerank.config import load_params
from dualrerank.orchestration import fingerprint, is_transient, markdown_reports, results_markdown, run_recorded
from dualrerank.stages import STAGES

DATA_STAGES = ("generate", "validate")  # always checked: new logs must be ingested and validated


def dvc_cache_key(context: Any, parameters: dict[str, Any]) -> str | None:
    """A cache hit only for a stage DVC says is up to date, keyed on its ``dvc.lock`` entry."""
    return None if parameters["force"] else fingerprint(Path(parameters["root"]), parameters["stage"])


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    return is_transient(state.result(raise_on_failure=False))


@task(
    retries=2,
    retry_delay_seconds=[10, 60],
    retry_condition_fn=retry_if_transient,
    cache_key_fn=dvc_cache_key,
    persist_result=True,
    result_serializer="json",
    log_prints=True,
)
def run_stage(stage: str, root: str, force: bool = False) -> dict[str, Any]:
    """Run one stage unless DVC says it is up to date; attach its report if it fails."""
    try:
        return run_recorded(stage, Path(root), force)
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
def pipeline(root: str = ".", refresh_data: bool = False, retrain_from: str | None = None) -> list[dict[str, Any]]:
    """Run every stage of the project at ``root`` that DVC says changed.

    ``refresh_data``: rerun ``generate`` (re-ingest the source) even if its inputs look unchanged; later
    stages rerun only if the logs did change. ``retrain_from``: reuse the trained models of the stages
    between the data stages and this stage as they are, e.g. ``finetune`` for a streaming fine-tune.
    """
    project = Path(root).resolve()
    load_params(project / "params.yaml")  # a bad parameter fails here, before any work
    if retrain_from is not None and retrain_from not in STAGES:
        raise ValueError(f"retrain_from={retrain_from!r} is not a stage; stages are {list(STAGES)}")
    start = STAGES.index(retrain_from) if retrain_from else 0
    steps = []
    for i, (stage, stage_task) in enumerate(TASKS.items()):
        if i < start and stage not in DATA_STAGES:
            steps.append({"stage": stage, "status": "reused"})
            continue
        steps.append(stage_task(stage, str(project), force=refresh_data and stage == "generate"))
    publish_results(str(project), steps)
    return steps


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the Dual-Rerank pipeline as a Prefect flow.")
    parser.add_argument("--root", default=".", help="project root holding params.yaml, dvc.yaml and data/")
    parser.add_argument("--refresh-data", action="store_true", help="re-ingest the source logs")
    parser.add_argument("--retrain-from", default=None, help="reuse the models trained before this stage")
    args = parser.parse_args()
    pipeline(root=args.root, refresh_data=args.refresh_data, retrain_from=args.retrain_from)
