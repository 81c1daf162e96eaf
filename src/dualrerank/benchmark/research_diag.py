"""Parts of the research evaluation: the paper's diagnostics, the oracle's headroom and Best-of-N by generator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from dualrerank import metrics
from dualrerank.config import Params
from dualrerank.config.evaluation import EvaluateConfig
from dualrerank.evaluation import diagnostics as diag
from dualrerank.evaluation.evalset import judge_with_rules
from dualrerank.evaluation.policies import generative, run_policy
from dualrerank.evaluation.scoring import EvalSet, page_metrics, true_utilities
from dualrerank.models.components import SlateInputs
from dualrerank.models.io import load_as
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.reranking import Reranker

HEADLINE_STUDENT = "nar_kd"  # what distillation made of the teacher: PTAR and collapse measure it


def _first(ev: EvalSet, n: int) -> SlateInputs:
    return SlateInputs.from_batch({k: v[:n] for k, v in ev.tensors.items()})


def diagnostics(nets: dict[str, torch.nn.Module], ev: EvalSet, cfg: EvaluateConfig) -> dict[str, Any]:
    """PTAR, collapse and agreement of every student with the teacher's greedy lists; the teacher's entropy and
    Entropy-Consistency Gap by slot (and by query ambiguity, from the world: reporting only)."""
    teacher = nets.get("teacher")
    if not isinstance(teacher, ARTeacher):
        return {}
    n = min(cfg.diagnostics_requests, len(ev.tensors["pad_mask"]))
    x = _first(ev, n)
    lists = teacher.greedy(x)
    students = {k: v for k, v in nets.items() if isinstance(v, NARStudent)}
    by_student = {k: diag.student_vs_teacher(s, lists, x, ev.viewport) for k, s in students.items()}
    out: dict[str, Any] = {"by_student": by_student}
    headline = by_student.get(HEADLINE_STUDENT)  # the report contract's top-level figures: the distilled student's
    if headline is not None:
        out |= {"student": HEADLINE_STUDENT, **{k: headline[k] for k in ("ptar", "ptar_viewport", "collapse_rate")}}
    m = min(cfg.ecg_requests, n)
    ecg = diag.entropy_consistency_gap(teacher, _first(ev, m), cfg.ecg_samples, seed=cfg.seed)
    out["ecg_by_slot"] = np.nanmean(ecg["ecg"], axis=0).tolist()
    out["ecg"] = float(np.nanmean(ecg["ecg"]))
    out["teacher_entropy_by_slot"] = np.nanmean(ecg["greedy_entropy"], axis=0).tolist()
    if ev.requests is not None:
        ambiguous = (ev.requests.intent_topic[:m] >= 0).sum(1) > 1
        buckets = {"ambiguous": ambiguous, "clear": ~ambiguous}
        out["ecg_by_bucket"] = {k: float(np.nanmean(ecg["ecg"][b])) for k, b in buckets.items() if b.any()}
    return out


def best_of_n_by_generator(
    params: Params, ev: EvalSet, files: dict[str, Path], released: tuple[str, dict[str, np.ndarray]]
) -> dict[str, dict]:
    """The released Best-of-N size over every student in ``files``, each judged with the rules its file records,
    its true utility paired against the released generator's (``released``: its name and the per-request
    utilities of the scored policies): does fine-tuning help the served policy, or only the greedy list?"""
    cfg, judge = params.evaluate, (ev.judges or {}).get("evaluator")
    if judge is None:
        return {}
    n, (name, utilities) = cfg.gate.candidate_n_samples, released
    base = utilities.get(f"{name}_bon{n}")
    out: dict[str, dict] = {}
    for gen, f in files.items():
        if not f.exists():
            continue
        student, record = load_as(f, NARStudent)
        rr = Reranker(student, judge_with_rules(judge, record["meta"]), temperature=cfg.bon_temperature, seed=cfg.seed)
        pages = run_policy(generative(f"{gen}_bon{n}", rr, n), ev.tensors, cfg.batch_size)
        out[gen] = page_metrics(pages, ev) | {"n_samples": n}
        u = true_utilities(pages, ev)
        if u is not None and base is not None and gen != name:
            out[gen][f"true_utility_gain_vs_{name}_bon{n}"] = metrics.paired_difference(u, base)
    return out
