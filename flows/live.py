"""The live loop as a Prefect flow: one task per round (docs/live.md).

Each run resumes the loop where ``data/live/state.json`` left it: rounds already done are skipped, a round a crash
interrupted goes on from its last finished phase. ``rounds`` caps how many rounds this run plays (the deployment
plays one per run; ``make live`` all of ``live.rounds``). The arms' services live as long as the flow run. Every
number comes from ``params.yaml`` under ``root`` (section ``live``). ``python flows/live.py`` runs it once.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from dualrerank.config import load_params
from dualrerank.live.loop import LiveLoop, clear
from dualrerank.live.report import markdown_table


@task(cache_policy=NO_CACHE, log_prints=True)
def live_round(loop: LiveLoop, r: int) -> None:
    """Round ``r``: traffic, validation, measurement, learning, records (each phase once, across reruns)."""
    loop.run_round(r)


@flow(name="dual-rerank-live", log_prints=True)
def live(root: str = ".", rounds: int | None = None, restart: bool = False) -> dict[str, Any]:
    """Play (or resume) the live loop at ``root``: at most ``rounds`` rounds not yet done (all by default)."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    project = Path(root).resolve()
    params = load_params(project / "params.yaml")  # bad parameters fail here, before any work
    if restart:
        clear(project)
    loop = LiveLoop(params, project)
    todo = loop.pending(rounds)
    report = loop.run(rounds, play=lambda r: live_round.with_options(task_run_name=f"round-{r}")(loop, r))
    create_markdown_artifact(markdown_table(report), key="dual-rerank-live", description="the live loop's rounds")
    totals = {k: report[k] for k in ("lost_impressions", "duplicated_impressions")}
    print(f"dual-rerank-live: {len(todo)} round(s) played; {len(report['rounds'])} rows in live.json; {totals}")
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Run the Dual-Rerank live loop as a Prefect flow.")
    parser.add_argument("--root", default=".", help="project root holding params.yaml and the production run's data/")
    parser.add_argument("--rounds", type=int, default=None, help="play at most this many rounds not yet done")
    parser.add_argument("--restart", action="store_true", help="delete data/live and start from round 0")
    args = parser.parse_args()
    live(root=args.root, rounds=args.rounds, restart=args.restart)
