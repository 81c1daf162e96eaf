"""Study ``evaluate``: the research policies on the test requests, beyond what the production cycle evaluates.

Policies: upstream, score-and-sort, the AR teacher greedy and with beam search, the NAR student without KD
(``nar_nokd``: stage ``train_nar``), with KD (``nar_kd``), the production LDRO run (``nar_ldro``) and the
benchmark's chosen LDRO and GRPO runs (``nar_ldro_selected``, ``nar_grpo``); the Best-of-N curve of the
production student from N=1 to 256; per policy the true utility (reported only) with headroom captured,
logged-label metrics and both evaluators' utility, paired gains over score-and-sort. Plus the paper's
diagnostics, the judge audit of the released Best-of-N, Best-of-N by generator and the evaluator-vs-truth
correlation. Writes ``data/reports/benchmark/evaluate.json`` and ``plots/best_of_n_curve.png``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dualrerank.benchmark.common import BenchPaths, params_at, write_json
from dualrerank.benchmark.research_diag import best_of_n_by_generator, diagnostics
from dualrerank.config import Params
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.evaluation import plots
from dualrerank.evaluation.correlation import evaluator_correlation
from dualrerank.evaluation.evalset import (
    audit_student,
    build_eval_set,
    judge_with_rules,
    oracle_headroom,
    paired_gains,
)
from dualrerank.evaluation.policies import Policy, generative, run_policy, score_and_sort, upstream
from dualrerank.evaluation.scoring import EvalSet, page_metrics, true_utilities
from dualrerank.models.io import load_as
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.reranking import Reranker

BON_CURVE = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # lists per request of the Best-of-N curve
RELEASED = "nar_ldro"  # the production generator: the Best-of-N curve and the judge audit are its


def student_files(bench: BenchPaths) -> dict[str, Path]:
    """Policy name -> NAR student file, in report order (files that do not exist are skipped later)."""
    p = bench.project
    return {
        "nar_nokd": p.model("nar"),
        "nar_kd": p.model("student"),
        "nar_ldro": p.model("student_ldro"),
        "nar_ldro_selected": bench.model("selected/ldro"),
        "nar_grpo": bench.model("selected/grpo"),
    }


def greedy_policies(params: Params, bench: BenchPaths, ev: EvalSet) -> tuple[list[Policy], dict[str, torch.nn.Module]]:
    """The baselines, the AR teacher (greedy, beam) and every NAR student's greedy list; the loaded networks."""
    p, K = bench.project, ev.page_len
    policies, nets = [upstream(K)], dict[str, torch.nn.Module]()
    if p.model("pointwise").exists():
        policies.append(score_and_sort(load_as(p.model("pointwise"), PointwiseScorer)[0], K))
    if p.model("teacher").exists():
        teacher = load_as(p.model("teacher"), ARTeacher)[0]
        nets["teacher"] = teacher
        policies.append(generative("ar_greedy", Reranker(teacher)))
        policies.append(generative("ar_beam", Reranker(teacher, beam_width=params.train_teacher.beam_width)))
    for name, f in student_files(bench).items():
        if f.exists():
            student = load_as(f, NARStudent)[0]
            nets[name] = student
            policies.append(generative(name, Reranker(student)))
    return policies, nets


def best_of_n_policies(params: Params, bench: BenchPaths, ev: EvalSet, sizes: tuple[int, ...]) -> list[Policy]:
    """``nar_ldro_bon<N>`` for every N: the production student judged by the released judge with its rules."""
    file, judge = student_files(bench)[RELEASED], (ev.judges or {}).get("evaluator")
    if judge is None or not file.exists():
        return []
    student, record = load_as(file, NARStudent)
    cfg = params.evaluate
    judge = judge_with_rules(judge, record["meta"])
    return [
        generative(f"{RELEASED}_bon{n}", Reranker(student, judge, temperature=cfg.bon_temperature, seed=cfg.seed), n)
        for n in sizes
    ]


def score(policies: list[Policy], ev: EvalSet, batch: int) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Per policy its :func:`page_metrics` row and, with a world, its per-request true utility."""
    rows: dict[str, dict] = {}
    utilities: dict[str, np.ndarray] = {}
    for p in policies:
        t0 = time.perf_counter()
        pages = run_policy(p, ev.tensors, batch)
        rows[p.name] = page_metrics(pages, ev) | {"n_samples": p.n_samples}
        u = true_utilities(pages, ev)
        if u is not None:
            utilities[p.name] = u
        print(f"bench evaluate: {p.name:<22} ({time.perf_counter() - t0:.1f} s)", flush=True)
    return rows, utilities


def released_audit(params: Params, bench: BenchPaths, ev: EvalSet) -> dict[str, Any]:
    """The released judge's audit on the production student's Best-of-N lists; empty without either."""
    file, judge = student_files(bench)[RELEASED], (ev.judges or {}).get("evaluator")
    if judge is None or not file.exists():
        return {}
    return {"generator": RELEASED, **audit_student(params, ev, file, judge)}


def evaluate(params: Params, bench: BenchPaths, sizes: tuple[int, ...] = BON_CURVE) -> dict[str, Any]:
    """The whole report (see the module docstring)."""
    p, cfg = bench.project, params.evaluate
    ev = build_eval_set(params, p, SlateMeta.load(p.meta), Slates.load(p.split("test")))
    greedy, nets = greedy_policies(params, bench, ev)
    rows, utilities = score(greedy + best_of_n_policies(params, bench, ev, sizes), ev, cfg.batch_size)
    paired_gains(utilities, rows)
    files = {k: f for k, f in student_files(bench).items() if k != "nar_nokd"}
    return {
        "policies": rows,
        "best_of_n_sizes": list(sizes),
        "oracle": oracle_headroom(p, ev, utilities, rows),
        "best_of_n_by_generator": best_of_n_by_generator(params, ev, files, (RELEASED, utilities)),
        "diagnostics": diagnostics(nets, ev, cfg),
        "evaluator_correlation": evaluator_correlation(ev, cfg.correlation_pages, cfg.seed),
        "judge_audit": released_audit(params, bench, ev),
        "n_test_requests": len(ev.tensors["pad_mask"]),
    }


def main(argv: list[str], root: Path) -> int:
    p = argparse.ArgumentParser(prog="dualrerank bench evaluate", description=__doc__)
    p.add_argument("--max-n", type=int, default=BON_CURVE[-1], help="largest N of the Best-of-N curve")
    args = p.parse_args(argv)
    bench = BenchPaths(root)
    report = evaluate(params_at(root), bench, tuple(n for n in BON_CURVE if n <= args.max_n))
    out = write_json(bench.report("evaluate.json"), report)
    plot = plots.best_of_n(report, bench.plots / "best_of_n_curve.png")
    print(f"bench evaluate: {out}" + (f", {plot}" if plot else ""))
    return 0
