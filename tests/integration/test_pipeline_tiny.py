"""The whole pipeline on a tiny world: every stage runs and the report has the contract's shape."""

from __future__ import annotations

import json

import pytest

from dualrerank.cli import main
from dualrerank.evaluation.report import reading
from dualrerank.models.io import load_model
from dualrerank.stages import STAGES
from dualrerank.stages.runner import execute

CONTRACT_FIELDS = {
    "true_utility",
    "true_utility_ci95",
    "headroom_captured",
    "ndcg_at_k",
    "recall_at_v",
    "evaluator_utility",
    "heldout_evaluator_utility",
    "latency_ms_p50",
    "latency_ms_p99",
}


PRODUCTION_POLICIES = {"upstream", "score_and_sort", "ar_greedy", "nar_kd", "nar_ldro", "nar_ldro_bon1"}
PRODUCTION_POLICIES |= {"nar_ldro_bon4"}


@pytest.mark.integration
def test_every_stage_runs_on_a_tiny_world(tiny_root):
    for stage in STAGES:
        execute(stage, root=tiny_root, track=False)
    report = json.loads((tiny_root / "data/reports/metrics.json").read_text())
    policies = report["policies"]
    assert set(policies) == PRODUCTION_POLICIES  # the research rows are the benchmark's
    for name, row in policies.items():
        assert set(row) >= CONTRACT_FIELDS, name
        assert row["true_utility"] is not None and row["true_utility_ci95"][0] <= row["true_utility"]
    assert report["oracle"]["method"].startswith("beam") or report["oracle"]["method"] == "exact"
    assert report["oracle"]["utility"] >= max(r["true_utility"] for r in policies.values()) - 1e-9
    # the gate judges what ships by the held-out evaluator: the released Best-of-N against score-and-sort
    gate = report["quality_gate"]
    assert gate["candidate"] == "nar_ldro_bon4" and gate["baseline"] == "score_and_sort"
    gain = gate["checks"]["candidate_gain_vs_score_and_sort"]["value"]
    key = "heldout_evaluator_utility"
    assert gain == pytest.approx(policies["nar_ldro_bon4"][key] - policies["score_and_sort"][key], abs=1e-12)
    # one LDRO run, from the distilled student, reported without the world's truth
    finetune = json.loads((tiny_root / "data/reports/finetune.json").read_text())
    assert finetune["method"] == "ldro" and finetune["started_from"] == "distilled student"
    assert finetune["stream"]["requests"] == 48 and finetune["stream"]["steps"] == 6
    assert "true" not in json.dumps(finetune).lower().replace("true,", "").replace("true\n", "")
    assert load_model(tiny_root / "data/models/student_ldro.ckpt")[1]["meta"]["started_from"] == "distilled student"
    # the judge that chose the target lists travels with every generator trained on them (a distilled student
    # inherits it from the teacher), so Best-of-N over any of them judges with the same prior rules
    judge = json.loads((tiny_root / "data/targets/reward_spec.json").read_text())
    assert {"dup_author", "dup_category", "below_floor"} <= set(judge["weights"])
    for name in ("teacher", "student"):
        assert load_model(tiny_root / f"data/models/{name}.ckpt")[1]["meta"]["reward_spec"] == judge, name
    targets = json.loads((tiny_root / "data/reports/targets.json").read_text())
    assert {"train_heldout_gain", "val_heldout_gain"} <= set(targets)
    assert reading(report)
    # Best-of-N judges with the evaluator retrained after the on-policy round, and that one is packaged
    packaged = json.loads((tiny_root / "data/models/package.json").read_text())
    assert packaged["sources"]["judge"].endswith("data/models/evaluator_explore.ckpt")
    # the judge audit of any evaluator over any student, on validation requests (design experiments)
    out = tiny_root / "audit.json"
    assert main(["--root", str(tiny_root), "audit-judge", "--requests", "20", "--out", str(out)]) == 0
    val = json.loads(out.read_text())
    assert val["split"] == "val" and val["n_requests"] == 20 and val["n_lists"] == 4
    assert val["selected_true_utility"]["truth"]["gain_vs_released"]["mean"] >= 0.0
    two = ["--requests", "5", "--n-samples", "2", "--out", str(out)]
    assert main(["--root", str(tiny_root), "audit-judge", *two]) == 0
    assert json.loads(out.read_text())["n_lists"] == 2
    for bad in (["--evaluator", str(tiny_root / "missing.ckpt")], ["--requests", "0"], ["--n-samples", "0"]):
        assert main(["--root", str(tiny_root), "audit-judge", *bad]) == 2, bad
    teacher = str(tiny_root / "data/models/teacher.ckpt")
    for bad in (["--generator", teacher], ["--evaluator", teacher]):  # a model file of the wrong kind
        assert main(["--root", str(tiny_root), "audit-judge", *bad]) == 2, bad
