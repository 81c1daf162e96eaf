"""Stage ``evaluate``: every policy on held-out test requests -> ``data/reports/metrics.json``.

Per policy: true utility with a 95% interval and headroom captured (when the data have a world: simulated,
or built from LETOR labels), NDCG@K / Recall@V on logged pages, NDCG@K on graded labels (LETOR data),
training- and held-out-evaluator utility, latency. Plus the oracle, the paper's diagnostics and the
evaluator-vs-truth correlation. Logs without a world keep every true-utility field null.
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch

from dualrerank import metrics
from dualrerank.config import Params
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.evaluation import diagnostics, plots
from dualrerank.evaluation.correlation import evaluator_correlation
from dualrerank.evaluation.evalset import audit_student, build_eval_set, finite_or_null, judge_with_rules, paired_gains
from dualrerank.evaluation.gate import candidate_name, quality_gate
from dualrerank.evaluation.latency import slice_requests, time_policies
from dualrerank.evaluation.policies import Policy, generative, run_policy, score_and_sort, upstream
from dualrerank.evaluation.report import console_table, gate_lines, reading, write_markdown
from dualrerank.evaluation.scoring import EvalSet, page_metrics, true_utilities
from dualrerank.models.components import SlateInputs
from dualrerank.models.io import load_as
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.paths import Paths
from dualrerank.reranking import Judge, Reranker

SECTIONS = ("data", "world", "evaluate", "train_teacher")

# model file -> policy name of its greedy list; the Best-of-N rows use the best available NAR student.
NAR_MODELS = (("nar", "nar_nokd"), ("student", "nar_kd"), ("student_grpo", "nar_grpo"), ("student_ldro", "nar_ldro"))


def build_policies(params: Params, paths: Paths, ev: EvalSet) -> tuple[list[Policy], dict[str, torch.nn.Module]]:
    cfg, K = params.evaluate, ev.page_len
    policies = [upstream(K)]
    nets: dict[str, torch.nn.Module] = {}
    if paths.model("pointwise").exists():
        pointwise, _ = load_as(paths.model("pointwise"), PointwiseScorer)
        policies.append(score_and_sort(pointwise, K))
    if paths.model("teacher").exists():
        teacher, _ = load_as(paths.model("teacher"), ARTeacher)
        nets["teacher"] = teacher
        policies.append(generative("ar_greedy", Reranker(teacher)))
        policies.append(generative("ar_beam", Reranker(teacher, beam_width=params.train_teacher.beam_width)))
    best_nar, best_meta = None, {}
    for file, name in NAR_MODELS:
        if paths.model(file).exists():
            student, record = load_as(paths.model(file), NARStudent)
            nets[name] = student
            policies.append(generative(name, Reranker(student)))
            if name != "nar_nokd":
                best_nar, best_meta = name, record["meta"]
    judge = ev.judges.get("evaluator") if ev.judges else None
    if best_nar is not None and judge is not None:
        judge = judge_with_rules(judge, best_meta)
        for n in cfg.bon_sizes:
            best = nets[best_nar]
            assert isinstance(best, NARStudent)
            rr = Reranker(best, judge, temperature=cfg.bon_temperature, seed=cfg.seed)
            policies.append(generative(f"{best_nar}_bon{n}", rr, n))
    return policies, nets


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg = params.evaluate
    meta = SlateMeta.load(paths.meta)
    ev = build_eval_set(params, paths, meta, Slates.load(paths.split("test")))
    policies, nets = build_policies(params, paths, ev)

    rows: dict[str, dict] = {}
    utilities: dict[str, np.ndarray] = {}
    for p in policies:
        t0 = time.perf_counter()
        pages = run_policy(p, ev.tensors, cfg.batch_size)
        rows[p.name] = page_metrics(pages, ev)
        u = true_utilities(pages, ev)
        if u is not None:
            utilities[p.name] = u
        print(
            f"evaluate: {p.name:<18} {rows[p.name].get('true_utility') or float('nan'):.4f} "
            f"({time.perf_counter() - t0:.1f} s)",
            flush=True,
        )
    paired_gains(utilities, rows)
    oracle = _oracle(paths, ev, utilities, rows)
    _latency(policies, ev, cfg, rows)
    report: dict = {
        "policies": rows,
        "oracle": oracle,
        "best_of_n_by_generator": best_of_n_by_generator(params, paths, ev, rows, utilities),
        "diagnostics": _diagnostics(nets, ev, cfg),
        "evaluator_correlation": evaluator_correlation(ev, cfg.correlation_pages, cfg.seed),
        "judge_audit": released_judge_audit(params, paths, ev, rows),
        "n_test_requests": len(ev.tensors["pad_mask"]),
    }
    report = finite_or_null(report)  # type: ignore[assignment]
    report["quality_gate"] = quality_gate(report, cfg.gate)
    write_reports(report, paths)
    print(console_table(report), *gate_lines(report), sep="\n", flush=True)
    figures = {f"{n}_true_utility": r["true_utility"] for n, r in rows.items() if r.get("true_utility") is not None}
    return {**figures, "quality_gate_passed": float(report["quality_gate"]["passed"])}


def best_of_n_by_generator(
    params: Params, paths: Paths, ev: EvalSet, rows: dict[str, dict], utilities: dict[str, np.ndarray]
) -> dict[str, dict]:
    """The released Best-of-N size over every distilled or fine-tuned student, each judged with the rules its
    file records, paired against the released candidate's: does fine-tuning help the *served* policy, or
    only the greedy list? Empty without a judge or a Best-of-N candidate."""
    cfg = params.evaluate
    n, candidate, judge = _released(params, ev, rows)
    if candidate is None or judge is None:
        return {}
    out: dict[str, dict] = {}
    for file, name in NAR_MODELS:
        if name == "nar_nokd" or not paths.model(file).exists():  # not the baseline without distillation
            continue
        policy = f"{name}_bon{n}"
        if policy in rows:  # the candidate itself
            out[name] = dict(rows[policy])
            continue
        student, record = load_as(paths.model(file), NARStudent)
        rr = Reranker(student, judge_with_rules(judge, record["meta"]), temperature=cfg.bon_temperature, seed=cfg.seed)
        pages = run_policy(generative(policy, rr, n), ev.tensors, cfg.batch_size)
        out[name] = page_metrics(pages, ev)
        u = true_utilities(pages, ev)
        if u is not None and candidate in utilities:
            out[name][f"true_utility_gain_vs_{candidate}"] = metrics.paired_difference(u, utilities[candidate])
    return out


def released_judge_audit(params: Params, paths: Paths, ev: EvalSet, rows: dict[str, dict]) -> dict:
    """``judge_audit`` of the released judge (with its generator's rules) on the released generator's Best-of-N
    candidate lists for the test requests; empty without a judge or a Best-of-N candidate."""
    n, candidate, judge = _released(params, ev, rows)
    if candidate is None or judge is None:
        return {}
    name = candidate.removesuffix(f"_bon{n}")
    file = dict((policy, f) for f, policy in NAR_MODELS)[name]
    return {"generator": name, **audit_student(params, ev, paths.model(file), judge)}


def _released(params: Params, ev: EvalSet, rows: dict[str, dict]) -> tuple[int, str | None, Judge | None]:
    """The released Best-of-N size, the candidate policy's name (None if not evaluated) and the bare judge."""
    n = params.evaluate.gate.candidate_n_samples
    return n, candidate_name(rows, n), (ev.judges.get("evaluator") if ev.judges else None)


def write_reports(report: dict, paths: Paths) -> None:
    """``metrics.json``, the plots and ``report.md``; plots are attached to the MLflow run too."""
    paths.reports.mkdir(parents=True, exist_ok=True)
    paths.report("metrics.json").write_text(json.dumps(report, indent=2, allow_nan=False))
    made = [
        plots.utility_vs_latency(report, paths.plots / "utility_vs_latency.png"),
        plots.best_of_n(report, paths.plots / "best_of_n.png"),
    ]
    extra = [paths.plots / name for name in ("ldro_vs_grpo_drift.png", "headroom_vs_strength.png")]
    figures = [p for p in made if p is not None] + [p for p in extra if p.exists()]
    write_markdown(report, paths.report("report.md"), figures, reading(report))
    import mlflow

    if mlflow.active_run() is not None:
        for fig in figures:
            mlflow.log_artifact(str(fig), artifact_path="plots")
        mlflow.log_artifact(str(paths.report("report.md")))
        mlflow.log_artifact(str(paths.report("metrics.json")))


def _oracle(paths: Paths, ev: EvalSet, utilities: dict[str, np.ndarray], rows: dict[str, dict]) -> dict:
    if not utilities or not paths.oracle.exists():
        for r in rows.values():
            r["headroom_captured"] = None
        return {"utility": None, "method": None}
    with np.load(paths.oracle) as z:
        ids = dict(zip(z["request_id"].astype(str), z["utility"]))
        u_oracle = np.array([ids[r] for r in ev.requests.request_id.astype(str)])  # type: ignore[union-attr]
        method = str(z["method"])
    base = utilities.get("score_and_sort", utilities["upstream"]).mean()
    for name, u in utilities.items():
        rows[name]["headroom_captured"] = metrics.headroom_captured(u.mean(), base, u_oracle.mean())
    return {"utility": float(u_oracle.mean()), "method": method}


def _latency(policies: list[Policy], ev: EvalSet, cfg, rows: dict[str, dict]) -> None:
    torch.set_num_threads(2)
    single = slice_requests(ev.tensors, 1, cfg.latency_requests)
    batch = slice_requests(ev.tensors, cfg.serving_batch, cfg.serving_batch_calls)
    for name, t in time_policies(policies, single, seed=cfg.seed).items():
        rows[name].update(latency_ms_p50=t["p50_ms"], latency_ms_p99=t["p99_ms"])
    for name, t in time_policies(policies, batch, warmup=2, seed=cfg.seed).items():
        rows[name].update(batch_latency_ms_p50=t["p50_ms"], batch_latency_ms_p99=t["p99_ms"])


def _diagnostics(nets: dict[str, torch.nn.Module], ev: EvalSet, cfg) -> dict:
    if "teacher" not in nets:
        return {}
    teacher = nets["teacher"]
    n = min(cfg.diagnostics_requests, len(ev.tensors["pad_mask"]))
    x = SlateInputs.from_batch({k: v[:n] for k, v in ev.tensors.items()})
    teacher_lists = teacher.greedy(x)  # type: ignore[operator]
    out: dict = {
        "by_student": {
            name: diagnostics.student_vs_teacher(net, teacher_lists, x, ev.viewport)  # type: ignore[arg-type]
            for name, net in nets.items()
            if name != "teacher"
        }
    }
    m = min(cfg.ecg_requests, n)
    xe = SlateInputs.from_batch({k: v[:m] for k, v in ev.tensors.items()})
    ecg = diagnostics.entropy_consistency_gap(teacher, xe, cfg.ecg_samples, seed=cfg.seed)  # type: ignore[arg-type]
    out["ecg_by_slot"] = np.nanmean(ecg["ecg"], axis=0).tolist()
    out["ecg"] = float(np.nanmean(ecg["ecg"]))
    out["teacher_entropy_by_slot"] = np.nanmean(ecg["greedy_entropy"], axis=0).tolist()
    if ev.requests is not None:  # buckets by the world's query ambiguity (evaluation-only ground truth)
        ambiguous = (ev.requests.intent_topic[:m] >= 0).sum(1) > 1
        buckets = {"ambiguous": ambiguous, "clear": ~ambiguous}  # LETOR worlds have one intent: no ambiguous
        out["ecg_by_bucket"] = {k: float(np.nanmean(ecg["ecg"][b])) for k, b in buckets.items() if b.any()}
    best = next((k for k in ("nar_ldro", "nar_kd", "nar_nokd") if k in out["by_student"]), None)
    if best is not None:
        out.update({k: out["by_student"][best][k] for k in ("ptar", "ptar_viewport", "collapse_rate")})
    return out
