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


@pytest.mark.integration
def test_every_stage_runs_on_a_tiny_world(tiny_root):
    for stage in STAGES:
        execute(stage, root=tiny_root, track=False)
    report = json.loads((tiny_root / "data/reports/metrics.json").read_text())
    policies = report["policies"]
    assert {"upstream", "score_and_sort", "ar_greedy", "ar_beam", "nar_nokd", "nar_kd"} <= set(policies)
    assert any(name.endswith("_bon4") for name in policies)
    for name, row in policies.items():
        assert set(row) >= CONTRACT_FIELDS, name
        assert row["true_utility"] is not None and row["true_utility_ci95"][0] <= row["true_utility"]
    assert report["oracle"]["method"].startswith("beam") or report["oracle"]["method"] == "exact"
    assert report["oracle"]["utility"] >= max(r["true_utility"] for r in policies.values()) - 1e-9
    assert 0.0 <= report["diagnostics"]["ptar"] <= 1.0
    # the judge that chose the target lists travels with every generator trained on them (a distilled student
    # inherits it from the teacher), so Best-of-N over any of them judges with the same prior rules
    judge = json.loads((tiny_root / "data/targets/reward_spec.json").read_text())
    assert {"dup_author", "dup_category", "below_floor"} <= set(judge["weights"])
    for name in ("teacher", "nar", "student"):
        assert load_model(tiny_root / f"data/models/{name}.ckpt")[1]["meta"]["reward_spec"] == judge, name
    targets = json.loads((tiny_root / "data/reports/targets.json").read_text())
    assert {"train_heldout_gain", "val_heldout_gain"} <= set(targets)
    # the released Best-of-N size over every student, paired against the released candidate
    report_n = 4  # tiny_params: evaluate.gate.candidate_n_samples
    by_generator = report["best_of_n_by_generator"]
    candidate = report["quality_gate"]["candidate"]
    assert candidate == f"nar_ldro_bon{report_n}" and set(by_generator) == {"nar_kd", "nar_grpo", "nar_ldro"}
    assert by_generator["nar_ldro"]["true_utility"] == policies[candidate]["true_utility"]
    for name in ("nar_kd", "nar_grpo"):
        gain = by_generator[name][f"true_utility_gain_vs_{candidate}"]
        expected = by_generator[name]["true_utility"] - policies[candidate]["true_utility"]
        assert gain["ci_low"] <= gain["mean"] <= gain["ci_high"] and abs(gain["mean"] - expected) < 1e-9
    assert any(line.startswith("The released Best-of-N size over each student") for line in reading(report))
    # the judge audit draws the very lists the released Best-of-N chose from: its released choice is that row
    audit = report["judge_audit"]
    assert audit["generator"] == "nar_ldro" and audit["n_lists"] == report_n
    chosen = audit["selected_true_utility"]
    assert chosen["evaluator_with_rules"]["mean"] == pytest.approx(policies[candidate]["true_utility"], abs=1e-9)
    assert chosen["greedy"]["mean"] == pytest.approx(policies["nar_ldro"]["true_utility"], abs=1e-9)
    assert chosen["truth"]["mean"] >= max(c["mean"] for c in chosen.values()) - 1e-12
    assert {"evaluator", "rules", "heldout_evaluator"} <= set(audit["spearman_within_request"])
    assert -1.0 <= audit["agreement_within_request"] <= 1.0
    assert any(line.startswith("Judge audit") for line in reading(report))
    # Best-of-N judges with the evaluator retrained after the on-policy round, and that one is packaged
    packaged = json.loads((tiny_root / "data/models/package.json").read_text())
    assert packaged["sources"]["judge"].endswith("data/models/evaluator_explore.ckpt")
    # the same audit for any evaluator over any student, on validation requests (design experiments)
    out = tiny_root / "audit.json"
    assert main(["--root", str(tiny_root), "audit-judge", "--requests", "20", "--out", str(out)]) == 0
    val = json.loads(out.read_text())
    assert val["split"] == "val" and val["n_requests"] == 20 and val["n_lists"] == report_n
    assert val["selected_true_utility"]["truth"]["gain_vs_released"]["mean"] >= 0.0
    for bad in (["--evaluator", str(tiny_root / "missing.ckpt")], ["--requests", "0"]):
        assert main(["--root", str(tiny_root), "audit-judge", *bad]) == 2, bad
    teacher = str(tiny_root / "data/models/teacher.ckpt")
    for bad in (["--generator", teacher], ["--evaluator", teacher]):  # a model file of the wrong kind
        assert main(["--root", str(tiny_root), "audit-judge", *bad]) == 2, bad
