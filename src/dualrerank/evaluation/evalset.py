"""The held-out requests a policy is scored on (:class:`EvalSet`), built from the project's files, and the
helpers that evaluation, fine-tuning, release and the benchmark share: judges with a generator's prior rules,
paired gains, the judge audit of a student's Best-of-N lists, JSON-safe reports."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from dualrerank import metrics
from dualrerank.config import Params
from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.data.targets import item_reward
from dualrerank.evaluation.judge_audit import candidate_lists, judge_audit
from dualrerank.evaluation.scoring import EvalSet
from dualrerank.models.io import load_as
from dualrerank.models.student import NARStudent
from dualrerank.paths import Paths
from dualrerank.reranking import Judge, Reranker, prior_rules
from dualrerank.world.simulator import World


def build_eval_set(params: Params, paths: Paths, meta: SlateMeta, test: Slates) -> EvalSet:
    world, requests = None, None
    if paths.world.exists():  # generate rewrites data/raw/truth every run: a world there is these logs' world
        world = World.load(paths.world)
        requests = world.split_of(test.request_id.astype(np.int64))
        if not np.array_equal(requests.item_id.astype(str), test.item_id):
            raise ValueError("test slates and world requests disagree on candidates; rerun generate + validate")
    judges = {  # the evaluators after the on-policy round (stage explore): the ones fine-tuning and serving use
        name: Judge.from_file(f)
        for name, f in (("evaluator", paths.judge), ("heldout_evaluator", paths.heldout_judge))
        if f.exists()
    }
    viewport = world.cfg.viewport if world is not None else layout_viewport(paths, meta)
    return EvalSet(
        slate_tensors(test),
        item_reward(test, meta, params.data.reward.item),
        viewport,
        meta.page_len,
        world,
        requests,
        judges,
        graded_relevance(paths, test),
    )


def layout_viewport(paths: Paths, meta: SlateMeta) -> int:
    """Slots on the first screen: the world's layout setting when the logs come from one, else ``min(4, K)``.
    A layout fact, read from the world's settings only (never its utility)."""
    if paths.world.exists():
        return int(World.load_config(paths.world).viewport)
    return min(4, meta.page_len)


def graded_relevance(paths: Paths, test: Slates) -> np.ndarray | None:
    """``[R, N]`` graded labels of the test candidates (LETOR data), None when the data has none."""
    if not paths.relevance.exists():
        return None
    with np.load(paths.relevance) as z:
        rows = dict(zip(z["request_id"].astype(str), z["grade"]))
    return np.stack([rows[r] for r in test.request_id])


def judge_with_rules(judge: Judge, generator_meta: dict) -> Judge:
    """The Best-of-N judge with the prior rules recorded in the generator's file: the rules it was fine-tuned
    with, or those of the judge that chose its targets (a distilled student inherits the teacher's); none
    for a generator without a ``reward_spec``."""
    return dataclasses.replace(judge, rules=prior_rules(generator_meta))


def finite_or_null(obj: object) -> object:
    """JSON-safe copy: NaN and infinities become null (JSON has no NaN)."""
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    if isinstance(obj, (float, np.floating)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


def paired_gains(utilities: dict[str, np.ndarray], rows: dict[str, dict], baseline: str = "score_and_sort") -> None:
    """Each policy's true-utility gain over ``baseline`` on the same requests, with its 95% interval (paired: far
    tighter than comparing the two policies' own intervals)."""
    base = utilities.get(baseline)
    if base is None:
        return
    for name, u in utilities.items():
        if name != baseline:
            rows[name][f"true_utility_gain_vs_{baseline}"] = metrics.paired_difference(u, base)


def oracle_headroom(
    paths: Paths, ev: EvalSet, utilities: dict[str, np.ndarray], rows: dict[str, dict]
) -> dict[str, float | str | None]:
    """The oracle's mean utility on the evaluated requests (``generate`` wrote it, reporting only), and each row's
    ``headroom_captured`` over score-and-sort (over upstream without it); nulls without a world or an oracle."""
    if not utilities or not paths.oracle.exists() or ev.requests is None:
        for r in rows.values():
            r["headroom_captured"] = None
        return {"utility": None, "method": None}
    with np.load(paths.oracle) as z:
        ids = dict(zip(z["request_id"].astype(str), z["utility"]))
        u_oracle = np.array([ids[r] for r in ev.requests.request_id.astype(str)])
        method = str(z["method"])
    base = utilities.get("score_and_sort", utilities["upstream"]).mean()
    for name, u in utilities.items():
        rows[name]["headroom_captured"] = metrics.headroom_captured(u.mean(), base, u_oracle.mean())
    return {"utility": float(u_oracle.mean()), "method": method}


def audit_student(params: Params, ev: EvalSet, generator: Path, judge: Judge, n_samples: int | None = None) -> dict:
    """``judge_audit`` of ``judge`` (with the prior rules the generator's file records) on the lists the released
    Best-of-N draws from the student in ``generator`` (its size unless ``n_samples`` is given, the serving
    temperature, the evaluation seed)."""
    cfg = params.evaluate
    student, record = load_as(generator, NARStudent)
    n = cfg.gate.candidate_n_samples if n_samples is None else n_samples
    reranker = Reranker(student, temperature=cfg.bon_temperature, seed=cfg.seed)
    lists = candidate_lists(reranker, ev.tensors, n, cfg.batch_size)
    return judge_audit(ev, lists, judge_with_rules(judge, record["meta"]))


def audit_files(
    params: Params,
    paths: Paths,
    generator: Path,
    evaluator: Path,
    split: str = "val",
    n_requests: int | None = None,
    n_samples: int | None = None,
) -> dict:
    """``dualrerank audit-judge``: the audit of any evaluator file over any student file, on the first ``n_requests``
    of a split, with ``n_samples`` lists per request (default: the released size). Validation by default: design
    experiments compare evaluators without looking at the test split."""
    slates = Slates.load(paths.split(split))
    if n_requests is not None:
        slates = slates.subset(slice(0, n_requests))
    ev = build_eval_set(params, paths, SlateMeta.load(paths.meta), slates)
    audit = audit_student(params, ev, generator, Judge.from_file(evaluator), n_samples)
    return {"split": split, "generator": str(generator), "evaluator": str(evaluator), **audit}
