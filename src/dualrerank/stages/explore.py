"""Stage ``explore`` [ours]: one on-policy logging round for the reward model (docs/finetune.md, "On-policy round").

Both evaluators learn from the logging policy's pages. Fine-tuning asks the training evaluator something else:
which of ``G`` lists drawn around the distilled student's greedy list is best. There it ranks barely better than
chance, while it ranks the logging policy's own lists well (docs/finetune.md, "Where the limit is"). The round
does what a production team does before trusting a reward model on a new policy: it shows the new policy's pages
to traffic and logs the feedback. The distilled student draws ``pages_per_request`` Gumbel-Max pages for every
training request (the fine-tuning groups' sampler and temperature); their feedback is drawn like the logs'; each
evaluator continues from its logged fit on its own half of the training requests (so the two stay disjoint), in
batches of whole requests: the logging policy's page and the round's pages of each, regressed response by response
and compared with each other (``within_weight``, docs/judge.md). It is written as ``<evaluator>_explore``, the
files fine-tuning reads.

The world only *logs* here (sampled clicks, watch time, page outcomes); its utility is never read. Logs without a
world (Parquet/CSV) cannot be explored offline, and ``enabled: false`` switches the round off: either way the
logged evaluators are copied unchanged and ``explore.json`` says why.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dualrerank.config import Params
from dualrerank.data import schema as S
from dualrerank.data.datamodule import grouped_tensors, slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.models.components import SlateInputs
from dualrerank.models.io import load_as
from dualrerank.models.student import NARStudent
from dualrerank.paths import Paths
from dualrerank.sampling import gumbel_max_sample
from dualrerank.stages.common import load_data
from dualrerank.stages.evaluator_fit import fit_evaluator, halves
from dualrerank.world.logs import WORLD_RESPONSES
from dualrerank.world.responses import sample_responses
from dualrerank.world.simulator import World

SECTIONS = ("data", "world", "train_evaluator", "explore")


def outputs(paths: Paths) -> dict[str, Path]:
    """Each logged evaluator's retrained file: what every later stage reads (``Paths.judge``, ``heldout_judge``)."""
    return {"evaluator": paths.judge, "evaluator_heldout": paths.heldout_judge}


def round_slates(base: Slates, pages: np.ndarray, responses: dict[str, np.ndarray], meta: SlateMeta) -> Slates:
    """The round's logs as slates: the requests of ``base`` (one row per shown page) with ``pages [R, K]`` as the
    logged page and the sampled ``responses`` (the world's keys) on the shown candidates, 0 elsewhere."""
    missing = [n for n in (*meta.feedback, *meta.page_feedback) if n not in WORLD_RESPONSES]
    if missing:
        raise ValueError(f"feedback columns {missing} have no simulated response; known: {sorted(WORLD_RESPONSES)}")
    R, N = base.pad_mask.shape
    feedback = np.zeros((R, N, len(meta.feedback)), dtype=np.float32)
    for col, name in enumerate(meta.feedback):
        values = np.asarray(responses[WORLD_RESPONSES[name]], dtype=np.float64)
        values = np.round(values, 2) if name == S.WATCH_TIME else values  # as the logs record it
        np.put_along_axis(feedback[..., col], pages, values.astype(np.float32), axis=1)
    page = np.stack([np.asarray(responses[WORLD_RESPONSES[n]], dtype=np.float32) for n in meta.page_feedback], 1)
    return dataclasses.replace(
        base,
        logged_page=pages.astype(np.int64),
        feedback=feedback,
        page_feedback=page.reshape(R, len(meta.page_feedback)),
    )


@torch.no_grad()
def student_pages(student: NARStudent, slates: Slates, n: int, temperature: float, seed: int) -> np.ndarray:
    """``[R, n, K]`` Gumbel-Max pages of ``student`` per request (no greedy list: every page explores)."""
    t = slate_tensors(slates)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for s in range(0, len(slates), 512):
        x = SlateInputs.from_batch({k: v[s : s + 512] for k, v in t.items()})
        out.append(gumbel_max_sample(student(x), x.pad_mask, n, temperature, False, gen)[0])
    return torch.cat(out).numpy()


def request_pages(logged: Slates, explored: Slates, m: int) -> dict:
    """Training batches of one request each: its logged page then the round's ``m`` pages of it (``explored`` holds
    them request by request, in ``logged``'s order), with their feedback: ``grouped_tensors`` with ``G = 1 + m``."""
    R, K = logged.logged_page.shape
    if len(explored) != R * m or not np.array_equal(explored.request_id[::m], logged.request_id):
        raise ValueError(f"the round's pages are not {m} per logged request, in the logs' order")
    L, P = logged.feedback.shape[-1], logged.page_feedback.shape[-1]
    pages = np.concatenate([logged.logged_page[:, None], explored.logged_page.reshape(R, m, K)], 1)
    slots = np.concatenate([logged.slot_feedback[:, None], explored.slot_feedback.reshape(R, m, K, L)], 1)
    outcomes = np.concatenate([logged.page_feedback[:, None], explored.page_feedback.reshape(R, m, P)], 1)
    return grouped_tensors(logged, pages, slots, outcomes)


def logged_outcomes(slates: Slates, meta: SlateMeta, weights: dict[str, float]) -> dict[str, float]:
    """Per shown page, the mean of each feedback column (summed over slots) and of the business reward on it."""
    out = {n: float(slates.feedback[..., c].sum(1).mean()) for c, n in enumerate(meta.feedback)}
    out |= {n: float(np.nanmean(slates.page_feedback[:, c])) for c, n in enumerate(meta.page_feedback)}
    out["reward"] = float(sum(w * out[n] for n, w in weights.items() if n in out))
    return out


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg = params.explore
    t0 = time.perf_counter()
    report: dict[str, Any] = {"round": False}
    paths.models.mkdir(parents=True, exist_ok=True)
    if not cfg.enabled or not paths.world.exists():
        off = "explore.enabled is false"
        report["reason"] = off if not cfg.enabled else "no world: logs cannot be explored offline"
        for role, out in outputs(paths).items():  # later stages read these: here the logged evaluators, unchanged
            shutil.copyfile(paths.model(role), out)
        _save_logs(paths, None)  # a round of no pages: every declared output exists
        print(f"explore: no round ({report['reason']}); the logged evaluators are kept", flush=True)
        _write_report(paths, report)
        return {}

    meta, data = load_data(paths)
    train = data["train"]
    world = World.load(paths.world)
    requests = world.split_of(train.request_id.astype(np.int64))
    if not np.array_equal(requests.item_id.astype(str), train.item_id):
        raise ValueError("train slates and world requests disagree on candidates; rerun generate + validate")
    student, _ = load_as(paths.model("student"), NARStudent)
    M = cfg.pages_per_request
    pages = student_pages(student, train, M, cfg.temperature, cfg.seed)  # [R, M, K]
    rows = np.repeat(np.arange(len(train)), M)
    flat = pages.reshape(len(rows), -1)
    feedback = sample_responses(world.model, requests.subset(rows), flat, np.random.default_rng(cfg.seed))
    explored = round_slates(train.subset(rows), flat, feedback, meta)
    _save_logs(paths, explored)
    print(f"explore: {len(rows)} student pages logged on {len(train)} training requests", flush=True)

    main_rows = halves(len(train), params.train_evaluator.main_share)
    val_t = slate_tensors(data["val"])
    figures: dict[str, float] = {}
    source = ((cfg,), (paths.model("student"),))  # the round's logs come from this student and these settings
    for role, mask in (("evaluator", main_rows), ("evaluator_heldout", ~main_rows)):
        logs = train.subset(np.flatnonzero(mask))
        name = outputs(paths)[role].stem  # warm start: the logged evaluator, a few epochs on the round's logs too
        figures |= fit_evaluator(
            params, paths, meta, role, logs, val_t, name, source, paths.model(role), cfg.refit_epochs,
            grouped=request_pages(logs, explored.subset(np.flatnonzero(mask[rows])), M),
            within_weight=cfg.within_weight,
        )  # fmt: skip
    weights = {**params.data.reward.item, **params.data.reward.page}
    report |= {
        "round": True,
        "pages_per_request": M,
        "temperature": cfg.temperature,
        "n_requests": len(train),
        "n_pages": len(rows),
        "logged_per_page": {
            "logging_policy": logged_outcomes(train, meta, weights),
            "student_round": logged_outcomes(explored, meta, weights),
        },
        "seconds": time.perf_counter() - t0,
    }
    _write_report(paths, report)
    figures["explore_logged_reward_per_page"] = report["logged_per_page"]["student_round"]["reward"]
    figures["logging_policy_logged_reward_per_page"] = report["logged_per_page"]["logging_policy"]["reward"]
    return figures


def _save_logs(paths: Paths, explored: Slates | None) -> None:
    """The round's logs, compact: request id, shown page, the feedback on it (per slot) and per page; empty arrays
    when there was no round."""
    arrays: dict[str, np.ndarray] = {"request_id": np.array([], dtype=str), "page": np.zeros((0, 0), np.int64)}
    arrays |= {"feedback": np.zeros((0, 0, 0), np.float32), "page_feedback": np.zeros((0, 0), np.float32)}
    if explored is not None:
        arrays = {
            "request_id": explored.request_id,
            "page": explored.logged_page,
            "feedback": explored.slot_feedback,
            "page_feedback": explored.page_feedback,
        }
    paths.explore_logs.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(paths.explore_logs, **arrays)  # type: ignore[arg-type]


def _write_report(paths: Paths, report: dict[str, Any]) -> None:
    paths.reports.mkdir(parents=True, exist_ok=True)
    path = paths.report("explore.json")
    path.write_text(json.dumps(report, indent=2))
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_artifact(str(path), artifact_path="reports")
