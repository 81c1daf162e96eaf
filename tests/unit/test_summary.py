"""The results table (``dualrerank summary``, report.md) never prints a missing figure as a number."""

from __future__ import annotations

import json

from dualrerank.cli import main
from dualrerank.evaluation.report import console_table, markdown_table

KEYS = ("true_utility", "true_utility_ci95", "headroom_captured", "ndcg_at_k", "recall_at_v",
        "evaluator_utility", "heldout_evaluator_utility", "latency_ms_p50", "latency_ms_p99")  # fmt: skip


def row(**values):
    return {k: values.get(k) for k in KEYS} | {k: v for k, v in values.items() if k not in KEYS}


def test_without_ground_truth_the_truth_columns_are_left_out():
    report = {
        "policies": {"upstream": row(ndcg_at_k=0.5, recall_at_v=0.25), "nar_kd": row(ndcg_at_k=0.625)},
        "oracle": {"utility": None, "method": None},
    }
    text = markdown_table(report)
    assert text.splitlines()[0] == "| policy | NDCG@K all cand. | Recall@V |"
    assert "| upstream | 0.500 | 0.250 |" in text
    assert "| nar_kd | 0.625 | - |" in text
    assert "oracle" not in text


def test_with_a_world_the_table_has_truth_graded_ndcg_and_the_oracle(tmp_path, capsys):
    report = {
        "policies": {
            "upstream": row(true_utility=1.25, true_utility_ci95=[1.0, 1.5], headroom_captured=-0.5,
                            graded_ndcg_at_k=0.4375),
        },
        "oracle": {"utility": 3.0, "method": "beam(256)"},
        "n_test_requests": 30,
    }  # fmt: skip
    assert "| upstream | 1.2500 | 0.2500 | -50.0% | 0.438 |" in markdown_table(report)
    assert "oracle (beam(256))  3.0000" in console_table(report)
    (tmp_path / "data/reports").mkdir(parents=True)
    (tmp_path / "data/reports/metrics.json").write_text(json.dumps(report))
    assert main(["--root", str(tmp_path), "summary"]) == 0
    out = capsys.readouterr().out
    assert "30 held-out requests" in out and "1.2500" in out


def test_summary_without_reports_says_what_to_do(tmp_path, capsys):
    assert main(["--root", str(tmp_path), "summary"]) == 1
    assert "run `make run`" in capsys.readouterr().out


def test_shown_candidates_keep_only_the_logged_page_and_leave_requests_without_one_alone():
    import torch

    from dualrerank.evaluation.scoring import shown_candidates

    pad = torch.tensor([[False, False, False, False], [False, False, False, True], [False, False, False, False]])
    page = torch.tensor([[2, 0, -1], [1, -1, -1], [-1, -1, -1]])
    out = shown_candidates({"pad_mask": pad, "logged_page": page, "other": torch.ones(3)})
    assert out["pad_mask"].tolist() == [
        [False, True, False, True],  # candidates 0 and 2 were shown
        [True, False, True, True],
        [False, False, False, False],  # nothing logged: unchanged (no label to score)
    ]
    assert out["other"] is not None and pad[0, 1].item() is False  # the input is not modified


def test_the_report_says_what_it_could_not_compute():
    from dualrerank.evaluation.report import not_computed_lines

    report = {"not_computed": {"true_utility": "no world behind these logs", "page_outcomes": "none logged"}}
    assert not_computed_lines(report) == ["true utility: no world behind these logs", "page outcomes: none logged"]
    assert not_computed_lines({"policies": {}}) == []
