"""Study ``finetune-report``: the chosen LDRO and GRPO runs on the test requests, and their spread over seeds.

Paired against the distilled student (NAR+KD) on every measure: true utility (reported only), training- and
held-out-evaluator utility, the reward-hacking gap and its split by response; LDRO minus GRPO; the production
run (``student_ldro.ckpt``) beside them. ``seeds``: per method, each extra seed's run (``seeds/<method>-<seed>``)
at the chosen rate with the chosen run itself as the first seed: the test gain per seed and of the seed average.
Writes ``data/reports/benchmark/finetune.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from dualrerank.benchmark.common import BenchPaths, params_at, read_json, write_json
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.evaluation.evalset import build_eval_set
from dualrerank.evaluation.finetune_report import policy_figures, seed_figures
from dualrerank.models.io import load_as
from dualrerank.models.student import NARStudent
from dualrerank.training.finetuning import greedy_pages

METHODS = ("ldro", "grpo")


def test_pages(files: dict[str, Path], tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``[R, K]`` greedy test lists of each student file that exists."""
    return {name: greedy_pages(load_as(f, NARStudent)[0], tensors) for name, f in files.items() if f.exists()}


def headline(test: dict[str, Any], seeds: dict[str, Any] | None) -> dict[str, Any]:
    """The figures a docs page quotes: each method's mean test gain over NAR+KD per measure, and the seed mean."""
    out: dict[str, Any] = {}
    for m in METHODS:
        for measure, gain in test["gains"].get(f"nar_{m}", {}).items():
            out[f"{m}_test_{measure}_gain"] = gain
        if seeds and m in seeds:
            out[f"{m}_test_true_utility_gain_seed_mean"] = seeds[m]["gain_seed_mean"]
    return out


def main(argv: list[str], root: Path) -> int:
    argparse.ArgumentParser(prog="dualrerank bench finetune-report", description=__doc__).parse_args(argv)
    params, bench = params_at(root), BenchPaths(root)
    paths = bench.project
    chosen = read_json(bench.selection)["chosen"]
    ev = build_eval_set(params, paths, SlateMeta.load(paths.meta), Slates.load(paths.split("test")))
    files = {"nar_kd": paths.model("student"), "nar_ldro_production": paths.model("student_ldro")}
    files |= {f"nar_{m}": bench.model(f"selected/{m}") for m in METHODS}
    pages = test_pages(files, ev.tensors)
    contrasts = (("nar_ldro", "nar_grpo"),) if {"nar_ldro", "nar_grpo"} <= set(pages) else ()
    test = policy_figures(pages, ev, baseline="nar_kd", contrasts=contrasts)
    runs = {
        m: [pages[f"nar_{m}"], *test_pages(seed_files(bench, m, params.benchmark.seeds), ev.tensors).values()]
        for m in METHODS
        if f"nar_{m}" in pages
    }
    seeds = seed_figures(runs, ev, pages["nar_kd"], [params.finetune.seed, *params.benchmark.seeds])
    report = {
        "chosen_lr": {m: row["lr"] for m, row in chosen.items()},
        "selection": params.benchmark.selection,
        "test": test | {"seeds": seeds},
        "headline": headline(test, seeds),
    }
    print(f"bench finetune-report: {write_json(bench.report('finetune.json'), report)}")
    return 0


def seed_files(bench: BenchPaths, method: str, seeds: tuple[int, ...]) -> dict[str, Path]:
    """The extra seeds' policy files of ``method``, in seed order."""
    return {f"{method}-{s}": bench.model(f"seeds/{method}-{s}") for s in seeds}
