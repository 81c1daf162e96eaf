"""The benchmark's pure parts: selection by the held-out evaluator, the flow's plan and progress, the scaling
parameters and table, the rendered results page."""

from __future__ import annotations

import sys

import pytest

from dualrerank.benchmark import STUDIES, study_main
from dualrerank.benchmark.progress import Progress, duration, family, only, repro_command, run_plan, topological
from dualrerank.benchmark.render import render
from dualrerank.benchmark.results import summarize
from dualrerank.benchmark.scaling import measured, scaled_params
from dualrerank.benchmark.scaling_report import log_slope, markdown, table
from dualrerank.benchmark.selection import choose, grid_table


def row(method: str, lr: float, heldout: float, train: float, truth: float) -> dict:
    return {"method": method, "lr": lr, "val_heldout_evaluator_utility": heldout, "val_evaluator_utility": train,
            "true_utility": truth, "curve": [[0, 1.0]]}  # fmt: skip


RUNS = {
    "ldro-0.0001": row("ldro", 1e-4, 0.50, 0.90, 0.99),  # best by the training evaluator and by the truth
    "ldro-0.001": row("ldro", 1e-3, 0.60, 0.70, 0.10),  # best by the held-out evaluator
    "grpo-0.0001": row("grpo", 1e-4, 0.40, 0.40, 0.40),
    "grpo-0.001": row("grpo", 1e-3, 0.45, 0.30, 0.00),
}


def test_selection_picks_each_methods_rate_by_the_heldout_evaluator_never_the_truth():
    chosen = choose(RUNS, "heldout_val")
    assert {m: r["lr"] for m, r in chosen.items()} == {"ldro": 1e-3, "grpo": 1e-3}
    assert chosen["ldro"]["name"] == "ldro-0.001"
    # the ablation: the training evaluator's choice differs
    assert choose(RUNS, "train_val")["ldro"]["lr"] == 1e-4


def test_selection_skips_runs_without_the_evaluator_and_tables_the_grid_without_curves():
    runs = RUNS | {"grpo-0.01": {**row("grpo", 1e-2, 0.0, 0.0, 0.0), "val_heldout_evaluator_utility": None}}
    assert choose(runs, "heldout_val")["grpo"]["lr"] == 1e-3
    grid = grid_table(RUNS)
    assert [r["lr"] for r in grid["ldro"]] == [1e-4, 1e-3] and "curve" not in grid["ldro"][0]


def test_topological_order_puts_dependencies_first_and_keeps_file_order_otherwise():
    deps = {"select": ["rl@b", "rl@a"], "seeds@1": ["select"], "rl@a": [], "rl@b": [], "sweep": []}
    order = {"sweep": 0, "seeds@1": 1, "select": 2, "rl@a": 3, "rl@b": 4}
    assert topological(list(deps), lambda n: deps[n], order) == ["sweep", "rl@a", "rl@b", "select", "seeds@1"]


def test_progress_estimates_from_the_stage_family_then_all_runs():
    p = Progress(total=4)
    assert p.left(["rl@a"]) is None and "unknown" in p.line(1, "rl@a", ["rl@a"])
    p.done("rl@a", 10.0)
    p.done("select", 2.0)
    assert p.estimate("rl@b") == 10.0 and p.estimate("drift@0") == 6.0
    assert p.left(["rl@b", "drift@0"]) == 16.0
    assert p.line(3, "rl@b", ["rl@b", "drift@0"]) == "benchmark: run 3 of 4: rl@b (~16 s left)"
    assert duration(95) == "1 min 35 s" and duration(4000) == "1 h 6 min"


def test_run_plan_resumes_runs_only_changed_stages_in_order_and_reports_progress():
    plan = [("rl@a", False), ("rl@b", True), ("select", True), ("summary", False)]
    ran, lines = [], []
    ticks = iter(range(100))
    steps = run_plan(plan, ran.append, lambda line, f: lines.append((line, f)), clock=lambda: float(next(ticks)))
    assert ran == ["rl@b", "select"]
    assert [s["status"] for s in steps] == ["up to date", "up to date", "ran", "ran"]
    assert lines[0] == ("benchmark: run 1 of 2: rl@b (time left unknown yet)", 0.0)
    assert lines[1][0].startswith("benchmark: run 2 of 2: select (~1 s left)") and lines[-1][1] == 1.0
    assert only(plan, ["rl"]) == plan[:2] and only(plan, None) == plan
    assert family("rl@ldro-0.001") == "rl"
    assert repro_command("rl@a") == [sys.executable, "-m", "dvc", "repro", "--single-item", "benchmarks/dvc.yaml:rl@a"]


def test_run_plan_stops_at_a_failing_stage():
    def run(stage: str) -> None:
        if stage == "b":
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        run_plan([("a", True), ("b", True), ("c", True)], run, lambda line, f: None)


def test_scaled_params_multiply_training_requests_and_cap_epochs():
    raw = {"common": {"progress": True}, "world": {"n_train_requests": 100},
           "train_teacher": {"optim": {"max_epochs": 8}}, "distill": {"optim": {"max_epochs": 1}},
           "explore": {"refit_epochs": 6}}  # fmt: skip
    out = scaled_params(raw, 4, max_epochs=2)
    assert out["explore"]["refit_epochs"] == 2
    assert out["world"]["n_train_requests"] == 400 and raw["world"]["n_train_requests"] == 100
    assert out["train_teacher"]["optim"]["max_epochs"] == 2 and out["distill"]["optim"]["max_epochs"] == 1
    assert out["common"]["progress"] is False


def test_measured_reports_the_child_process_peak_memory():
    usage = measured([sys.executable, "-c", "x = bytearray(64 * 2**20)"], cwd=__import__("pathlib").Path("."))
    assert usage["returncode"] == 0 and usage["peak_rss_mib"] >= 64 and usage["seconds"] > 0


def test_scaling_table_exponents_and_markdown():
    runs = [
        {"factor": f, "total_seconds": 3.0 * f, "peak_rss_mib": 100.0 * f,
         "stages": [{"stage": "generate", "seconds": 1.0 * f, "peak_rss_mib": 50.0},
                    {"stage": "distill", "seconds": 2.0 * f * f, "peak_rss_mib": 100.0 * f}]}
        for f in (4, 1)
    ]  # fmt: skip
    t = table(runs)
    assert t["generate"]["factors"] == [1, 4]
    assert t["generate"]["time_exponent"] == pytest.approx(1.0) and t["distill"]["time_exponent"] == pytest.approx(2.0)
    assert log_slope([1], [1.0]) is None
    md = markdown({"runs": sorted(runs, key=lambda r: r["factor"]), "stages": t})
    assert "| generate | 1.0 | 50 | 4.0 | 50 | 1.00 |" in md and "**total**" in md


def test_results_summary_and_page_name_the_commit_and_missing_reports():
    reports = {
        "select": {"selection": "heldout_val", "chosen": {"ldro": {"lr": 1e-3}},
                   "grid": {"ldro": [{"lr": 1e-3, "val_evaluator_utility": 0.7,
                                      "val_heldout_evaluator_utility": 0.6}]}},
        "finetune": {"headline": {"ldro_test_true_utility_gain": {"mean": 0.01, "ci_low": 0.0, "ci_high": 0.02}}},
    }  # fmt: skip
    results = {"commit": "0123456789abcdef", "dirty": False, "date": "today", **summarize(reports)}
    assert "drift" in results["missing"] and results["selection"]["chosen_lr"] == {"ldro": 1e-3}
    page = render(results)
    assert "`0123456789ab`" in page and "| ldro | 0.001 | 0.7000 | 0.6000 | yes |" in page
    assert "+0.0100 [+0.0000, +0.0200]" in page and "## Scaling" not in page


def test_every_study_has_a_main():
    for name in STUDIES:
        assert callable(study_main(name))
    with pytest.raises(KeyError):
        study_main("nope")


def test_a_stage_downstream_of_a_stale_one_will_run_though_its_own_inputs_look_unchanged():
    from dualrerank.benchmark.progress import will_run

    ordered = ["rl@ldro-0.001", "rl@grpo-0.001", "select", "seeds@ldro-1", "summary", "sweep"]
    deps = {"rl@ldro-0.001": [], "rl@grpo-0.001": [], "select": ["rl@ldro-0.001", "rl@grpo-0.001"],
            "seeds@ldro-1": ["select"], "summary": ["seeds@ldro-1", "sweep"], "sweep": []}  # fmt: skip
    assert will_run(ordered, deps, {"rl@grpo-0.001"}) == [False, True, True, True, True, False]
    assert will_run(ordered, deps, set()) == [False] * 6


def test_results_page_names_each_run_when_reports_come_from_several():
    from dualrerank.benchmark.render import render
    from dualrerank.benchmark.results import summarize

    old = {"commit": "a" * 40, "dirty": False, "date": "2026-12-01 10:00 UTC"}
    new = {"commit": "b" * 40, "dirty": True, "date": "2026-12-06 15:00 UTC"}
    reports = {
        "sweep": {"results": [{"strength": 0.5, "oracle": 2.0, "headroom_captured": {"nar_kd": 0.1}}], "run": new},
        "evaluate": {
            "policies": {"nar_ldro_bon4": {"true_utility": 1.8}},
            "best_of_n_sizes": [4],
            "diagnostics": {"student": "nar_kd", "ptar": 0.9, "ptar_viewport": 0.95, "collapse_rate": 0.0},
            "judge_audit": {
                "n_requests": 3,
                "n_lists": 4,
                "spearman_within_request": {"rules": 0.4},
                "selected_true_utility": {"rules": {"mean": 1.9, "gain_vs_released": None}},
                "by_dependency": {"context": {"within_request_std": 0.05, "spearman_with_truth": 0.3, "rules": 0.1}},
            },
            "run": old,
        },
    }
    page = render({"commit": "b" * 40, **summarize(reports)})
    assert "- sweep: commit `bbbbbbbbbbbb` (uncommitted changes), 2026-12-06 15:00 UTC" in page
    assert "- evaluate: commit `aaaaaaaaaaaa`, 2026-12-01 10:00 UTC" in page
    assert "| 0.5 | 2.0000 | 0.100 |" in page  # sweep: strength, oracle, headroom captured per policy
    assert "| 4 | 1.8000 |" in page  # Best-of-N by size
    assert "Headline (nar_kd): PTAR 0.900" in page and "| rules | 0.400 | 1.9000 |" in page
    assert "| part | spread within a request | Spearman with the truth | rules |" in page
    assert "| context | 0.0500 | 0.300 | 0.100 |" in page  # what the judge sees of each part of the truth
    one_run = render({"commit": "b" * 40, **summarize({"sweep": reports["sweep"]})})
    assert "more than one run" not in one_run


def test_a_run_is_dirty_for_code_changes_not_for_the_lock_files_a_run_writes(tmp_path):
    import subprocess

    from dualrerank.benchmark.common import git_commit

    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "reports").mkdir()
    for name in ("code.py", "dvc.lock", "reports/dvc.lock"):
        (tmp_path / name).write_text("a\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    assert git_commit(tmp_path / "reports") == {"commit": git_commit(tmp_path)["commit"], "dirty": False}
    for name in ("dvc.lock", "reports/dvc.lock"):
        (tmp_path / name).write_text("b\n")
    assert git_commit(tmp_path / "reports")["dirty"] is False  # a benchmark rewrites its locks as it runs
    (tmp_path / "code.py").write_text("b\n")
    assert git_commit(tmp_path / "reports")["dirty"] is True  # seen from a folder inside the checkout too
