"""``dualrerank summary``: the Markdown results table never prints a missing figure as a number."""

from __future__ import annotations

import json

from dualrerank.cli import main
from dualrerank.evaluation.summary import format_table


def row(**values):
    keys = ("true_utility", "true_utility_ci95", "headroom_captured", "ndcg_at_k", "recall_at_v",
            "evaluator_utility", "heldout_evaluator_utility", "latency_ms_p50", "latency_ms_p99")  # fmt: skip
    return {k: values.get(k) for k in keys} | {k: v for k, v in values.items() if k not in keys}


def test_without_ground_truth_the_truth_columns_are_left_out_with_a_note():
    report = {
        "policies": {"upstream": row(ndcg_at_k=0.5, recall_at_v=0.25), "nar_kd": row(ndcg_at_k=0.625)},
        "oracle": {"utility": None, "method": None},
        "n_test_requests": 30,
    }
    text = format_table(report)
    assert text.splitlines()[0] == "| policy | NDCG@K logged | recall@V logged |"
    assert "| upstream | 0.5000 | 0.2500 |" in text
    assert "| nar_kd | 0.6250 | null |" in text
    assert "no ground truth" in text and "oracle" not in text.split("no ground truth")[0]


def test_with_a_world_the_table_has_truth_graded_ndcg_and_the_oracle(tmp_path, capsys):
    report = {
        "policies": {
            "upstream": row(true_utility=1.25, true_utility_ci95=[1.0, 1.5], headroom_captured=-0.5,
                            graded_ndcg_at_k=0.4375),
        },
        "oracle": {"utility": 3.0, "method": "beam(256)"},
    }  # fmt: skip
    (tmp_path / "metrics.json").write_text(json.dumps(report))
    assert main(["--root", str(tmp_path), "summary", "--report", "metrics.json"]) == 0
    out = capsys.readouterr().out
    assert "| upstream | 1.2500 | [1.000, 1.500] | -0.500 | 0.4375 |" in out
    assert "oracle: true utility 3.0000 (beam(256))" in out


def test_a_missing_report_is_an_error(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "summary"]) == 2
    assert "does not exist" in capsys.readouterr().err
