"""Study ``rl``: one streaming fine-tuning run of the distilled student, the benchmark's unit of work.

``dualrerank bench rl --method ldro|grpo (--lr LR | --lr-from select.json) [--seed S] [--drift] --name KIND/NAME``
runs one pass of the production stream (``finetune.window``, group size, reward) from the distilled student and
writes ``data/reports/benchmark/KIND/NAME.json``: the probe curves (training reward; true utility, reported only),
both evaluators' validation utility of the greedy lists (what selection reads) and, unless ``--no-model``, the
policy to ``data/benchmark/models/KIND/NAME.ckpt``. DVC's matrix stages call it once per grid point or seed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dualrerank.benchmark.common import BenchPaths, judges, params_at, read_json, write_json
from dualrerank.config import Params
from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.evaluation.evalset import build_eval_set, layout_viewport
from dualrerank.evaluation.finetune_report import true_curve
from dualrerank.evaluation.policies import top_k
from dualrerank.evaluation.scoring import EvalSet, batched_scores
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.io import load_as, save_model
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.paths import Paths
from dualrerank.rewards import RewardSpec
from dualrerank.training.finetuning import (
    PolicyRun,
    drift_scales,
    greedy_pages,
    reward_spec,
    stream_tensors,
    train_policy,
)

METHODS = ("ldro", "grpo")


@dataclass
class Setup:
    """What a run reads: the distilled student (start and KL reference), teacher, training evaluator, reward
    spec, the stream, the probe requests (with their world, for the reported true curve) and validation."""

    student: NARStudent
    record: dict[str, Any]
    teacher: ARTeacher
    evaluator: ListEvaluator
    spec: RewardSpec
    stream: dict[str, torch.Tensor]
    probe: dict[str, torch.Tensor]
    probe_eval: EvalSet
    val: dict[str, torch.Tensor]


def prepare(params: Params, paths: Paths, drift: bool) -> Setup:
    """Load everything a run needs; with ``drift`` the stream's reward scales follow ``benchmark.drift``."""
    meta = SlateMeta.load(paths.meta)
    train, val = (Slates.load(paths.split(s)) for s in ("train", "val"))
    student, record = load_as(paths.model("student"), NARStudent)
    teacher, _ = load_as(paths.model("teacher"), ARTeacher)
    evaluator, judge_record = load_as(paths.judge, ListEvaluator)
    spec = reward_spec(params.data.reward, params.finetune, meta, judge_record["meta"], layout_viewport(paths, meta))
    stream = stream_tensors(params.data.reward, params.finetune.window, meta, train, student, teacher)
    if drift:
        d = params.benchmark.drift
        n = len(stream["pad_mask"])
        stream["reward_scale"] = drift_scales(spec, n, d.component, d.factor, d.start, d.ramp)
    probe_slates = val.subset(slice(0, params.benchmark.probe_requests))
    probe_eval = build_eval_set(params, paths, meta, probe_slates)
    probe = slate_tensors(probe_slates, {"item_reward": probe_eval.item_reward})
    probe["upstream_page"] = top_k(-probe["upstream_rank"], probe["pad_mask"], meta.page_len)
    return Setup(student, record, teacher, evaluator, spec, stream, probe, probe_eval, slate_tensors(val))


def validation_utility(net: NARStudent, val: dict[str, torch.Tensor], paths: Paths) -> dict[str, float]:
    """``val_<judge>_utility``: each evaluator's mean utility of the greedy lists on every validation request."""
    pages = greedy_pages(net, val)[:, None]
    return {f"val_{j}_utility": float(batched_scores(judge, val, pages).mean()) for j, judge in judges(paths).items()}


def run_report(setup: Setup, policy: PolicyRun, args: argparse.Namespace, paths: Paths, batch: int) -> dict[str, Any]:
    """The run's JSON: its settings, stream (``batch`` requests a step), curves and validation utilities."""
    steps = [step for step, _ in policy.curve]
    truth = true_curve(steps, policy.module.probe_pages, setup.probe["upstream_page"], setup.probe_eval)
    n = len(setup.stream["pad_mask"])
    return {
        "method": args.method,
        "lr": args.lr,
        "seed": args.seed,
        "drift": args.drift,
        "stream": {"requests": n, "steps": -(-n // batch)},
        "seconds": policy.seconds,
        "curve": policy.curve,
        "true_curve": truth,
        "final_normalised_reward": policy.curve[-1][1] if policy.curve else None,
        **validation_utility(policy.net, setup.val, paths),
    }


def chosen_lr(selection: Path, method: str) -> float:
    """The rate ``select`` chose for ``method``."""
    return float(read_json(selection)["chosen"][method]["lr"])


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="dualrerank bench rl", description=__doc__)
    p.add_argument("--method", choices=METHODS, required=True)
    rate = p.add_mutually_exclusive_group(required=True)
    rate.add_argument("--lr", type=float, help="learning rate")
    rate.add_argument("--lr-from", help="select.json: the method's chosen rate")
    p.add_argument("--seed", type=int, help="seed of the run (default finetune.seed)")
    p.add_argument("--drift", action="store_true", help="drift one reward component's scale mid-stream")
    p.add_argument("--name", required=True, help="KIND/NAME of the report (and model) file")
    p.add_argument("--no-model", action="store_true", help="do not save the policy")
    return p.parse_args(argv)


def main(argv: list[str], root: Path) -> int:
    args = parse(argv)
    params, bench = params_at(root), BenchPaths(root)
    paths = bench.project
    if args.lr_from:
        args.lr = chosen_lr(root / args.lr_from, args.method)
    args.seed = params.finetune.seed if args.seed is None else args.seed
    setup = prepare(params, paths, args.drift)
    policy = train_policy(
        setup.student, setup.evaluator, setup.spec, params.finetune, params.common, setup.stream, args.method,
        args.lr, args.seed, teacher=setup.teacher, probe=setup.probe,
    )  # fmt: skip
    report = run_report(setup, policy, args, paths, params.finetune.batch_size)
    out = write_json(bench.report(f"{args.name}.json"), report)
    if not args.no_model:
        meta = {**setup.record["meta"], "stage": "benchmark", "method": args.method, "lr": args.lr}
        meta |= {"seed": args.seed, "drift": args.drift, "reward_spec": setup.spec.to_dict()}
        save_model(bench.model(args.name), "student", setup.record["hparams"], policy.net, meta)
    print(f"bench rl: {args.name} ({args.method}, lr {args.lr:g}, seed {args.seed}) in {policy.seconds:.1f} s: {out}")
    return 0
