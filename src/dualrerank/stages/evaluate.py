"""Stage ``evaluate``: the policies the release and the results table need, on held-out test requests.

Policies: ``upstream``, ``score_and_sort``, ``ar_greedy``, ``nar_kd`` (the distilled student), ``nar_ldro`` (the
fine-tuned candidate) and the candidate's Best-of-N at ``evaluate.bon_sizes`` (the released size and its
neighbours). Per policy: true utility with a 95% interval and headroom captured (when the data have a world:
simulated, or built from LETOR labels; for the report only), NDCG@K / Recall@V on logged pages, training- and
held-out-evaluator utility, latency. Then the quality gate, which reads the held-out evaluator and the latency.
The research figures (baselines, GRPO, diagnostics, judge audit) are the benchmark's.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from dualrerank.config import Params
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.evaluation import plots
from dualrerank.evaluation.evalset import (
    build_eval_set,
    finite_or_null,
    judge_with_rules,
    oracle_headroom,
    paired_gains,
)
from dualrerank.evaluation.gate import quality_gate
from dualrerank.evaluation.latency import slice_requests, time_policies
from dualrerank.evaluation.policies import Policy, generative, run_policy, score_and_sort, upstream
from dualrerank.evaluation.report import console_table, gate_lines, reading, write_markdown
from dualrerank.evaluation.scoring import EvalSet, logged_ndcg, page_metrics, shown_candidates, true_utilities
from dualrerank.models.io import load_as
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.paths import Paths
from dualrerank.reranking import Reranker

SECTIONS = ("data", "world", "evaluate", "package")

# model file -> policy name of its greedy list; Best-of-N runs over the last one found (the release candidate).
NAR_MODELS = (("student", "nar_kd"), ("student_ldro", "nar_ldro"))


def build_policies(params: Params, paths: Paths, ev: EvalSet) -> list[Policy]:
    cfg, K = params.evaluate, ev.page_len
    policies = [upstream(K)]
    best: tuple[NARStudent, dict, str] | None = None
    if paths.model("pointwise").exists():
        pointwise, _ = load_as(paths.model("pointwise"), PointwiseScorer)
        policies.append(score_and_sort(pointwise, K))
    if paths.model("teacher").exists():
        teacher, _ = load_as(paths.model("teacher"), ARTeacher)
        policies.append(generative("ar_greedy", Reranker(teacher)))
    for file, name in NAR_MODELS:
        if paths.model(file).exists():
            student, record = load_as(paths.model(file), NARStudent)
            policies.append(generative(name, Reranker(student)))
            best = (student, record["meta"], name)
    judge = ev.judges.get("evaluator") if ev.judges else None
    if best is not None and judge is not None:
        student, meta, name = best
        # Best-of-N as it is served: on the served backend (ONNX Runtime: one export for every N) and threads
        generator, judge = student, judge_with_rules(judge, meta)
        if params.package.backend == "onnx":
            n_candidates = int((~ev.tensors["pad_mask"]).sum(1).max())
            n_lists, threads = cfg.gate.candidate_n_samples, params.package.num_threads
            served = Reranker(student, judge).exported(n_candidates, n_lists, threads)
            generator, judge = served.generator, served.judge  # type: ignore[assignment]
        for n in cfg.bon_sizes:
            rr = Reranker(generator, judge, temperature=cfg.bon_temperature, seed=cfg.seed)
            policies.append(generative(f"{name}_bon{n}", rr, n))
    return policies


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg = params.evaluate
    meta = SlateMeta.load(paths.meta)
    ev = build_eval_set(params, paths, meta, Slates.load(paths.split("test")))
    policies = build_policies(params, paths, ev)

    rows: dict[str, dict] = {}
    utilities: dict[str, np.ndarray] = {}
    shown = shown_candidates(ev.tensors)
    for p in policies:
        t0 = time.perf_counter()
        pages = run_policy(p, ev.tensors, cfg.batch_size)
        rows[p.name] = page_metrics(pages, ev)
        rows[p.name]["ndcg_at_k_shown"] = logged_ndcg(run_policy(p, shown, cfg.batch_size), ev)
        u = true_utilities(pages, ev)
        if u is not None:
            utilities[p.name] = u
        print(
            f"evaluate: {p.name:<18} {rows[p.name].get('true_utility') or float('nan'):.4f} "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    paired_gains(utilities, rows)
    oracle = oracle_headroom(paths, ev, utilities, rows)
    _latency(policies, ev, cfg, rows)
    report: dict = {"policies": rows, "oracle": oracle, "n_test_requests": len(ev.tensors["pad_mask"])}
    report["not_computed"] = not_computed(ev, meta)
    report = finite_or_null(report)  # type: ignore[assignment]
    report["quality_gate"] = quality_gate(report, cfg.gate)
    write_reports(report, paths)
    print(console_table(report), *gate_lines(report), sep="\n", flush=True)
    figures = {f"{n}_true_utility": r["true_utility"] for n, r in rows.items() if r.get("true_utility") is not None}
    return {**figures, "quality_gate_passed": float(report["quality_gate"]["passed"])}


def not_computed(ev: EvalSet, meta: SlateMeta) -> dict[str, str]:
    """The figures these logs cannot give, each with the reason (``metrics.json``, the report and the summary)."""
    out = {}
    if ev.world is None:
        out["true_utility"] = (
            "no world behind these logs, so nobody knows what a page they never showed is worth: true utility, "
            "its interval, headroom captured and the oracle stay null; the logged-label and evaluator figures remain"
        )
    if not (ev.item_reward > 0).any():
        out["ndcg_at_k"] = "no test request has a positive logged reward, so there is nothing to rank by: NDCG is null"
    if not meta.page_feedback:
        out["page_outcomes"] = (
            "the logs have no request-level outcome (satisfaction, reformulated): the evaluators, the fine-tuning "
            "reward and the judge count per-item feedback only"
        )
    return out


def write_reports(report: dict, paths: Paths) -> None:
    """``metrics.json``, the plots and ``report.md``; plots are attached to the MLflow run too."""
    paths.reports.mkdir(parents=True, exist_ok=True)
    paths.report("metrics.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    made = [
        plots.utility_vs_latency(report, paths.plots / "utility_vs_latency.png"),
        plots.best_of_n(report, paths.plots / "best_of_n.png"),
    ]
    figures = [p for p in made if p is not None]
    write_markdown(report, paths.report("report.md"), figures, reading(report))
    import mlflow

    if mlflow.active_run() is not None:
        for fig in figures:
            mlflow.log_artifact(str(fig), artifact_path="plots")
        mlflow.log_artifact(str(paths.report("report.md")))
        mlflow.log_artifact(str(paths.report("metrics.json")))


def _latency(policies: list[Policy], ev: EvalSet, cfg, rows: dict[str, dict]) -> None:
    torch.set_num_threads(2)
    single = slice_requests(ev.tensors, 1, cfg.latency_requests)
    batch = slice_requests(ev.tensors, cfg.serving_batch, cfg.serving_batch_calls)
    for name, t in time_policies(policies, single, seed=cfg.seed).items():
        rows[name].update(latency_ms_p50=t["p50_ms"], latency_ms_p99=t["p99_ms"])
    for name, t in time_policies(policies, batch, warmup=2, seed=cfg.seed).items():
        rows[name].update(batch_latency_ms_p50=t["p50_ms"], batch_latency_ms_p99=t["p99_ms"])
