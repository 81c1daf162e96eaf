"""The GX validation suite: a valid table passes; each single corruption fails exactly one named
expectation, on the right column, with the right count and example request ids; files and exit codes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dualrerank.cli import main as cli_main
from dualrerank.config import merge, replace
from dualrerank.validation.check import validate_file, validate_table
from dualrerank.world.logs import log_table
from dualrerank.world.simulator import World
from repo_params import repo_params, repo_raw

N_CAND = 8  # candidates per request in the tiny world; 10 requests (ids 0..9), pages of 4
MAX_CAND = 10
PARAMS = repo_params()
CFG = replace(PARAMS.validate, min_candidates=2, max_examples=5)
# a contract-valid subset of the world's columns keeps each GX run small
KEEP = ["request_id", "ts", "item_id", "ctx_user_0", "ctx_watch", "feat_quality", "feat_relevance",
        "upstream_score", "upstream_rank", "logged_position", "click", "watch_time", "satisfaction",
        "reformulated"]  # fmt: skip


@pytest.fixture(scope="module")
def full_table() -> pd.DataFrame:
    cfg = replace(
        PARAMS.world, n_train_requests=6, n_val_requests=2, n_test_requests=2, n_candidates=N_CAND, page_len=4
    )
    return log_table(World.generate(cfg), seed=1)


@pytest.fixture()
def table(full_table: pd.DataFrame) -> pd.DataFrame:
    t = full_table[KEEP].copy()
    t["label_like"] = t["click"]  # an extra feedback column, null on unshown rows like click
    return t


def rows(t: pd.DataFrame, rid: int, shown: bool | None = None) -> pd.Index:
    """Index of request ``rid``'s rows (only shown / unshown ones if ``shown`` is given)."""
    mask = t["request_id"] == rid
    if shown is not None:
        mask &= t["logged_position"].notna() if shown else t["logged_position"].isna()
    return t.index[mask]


def set_at(t: pd.DataFrame, index: pd.Index | list[int], column: str, value: object) -> pd.DataFrame:
    t.loc[index, column] = value
    return t


def too_few(t: pd.DataFrame) -> pd.DataFrame:
    r = rows(t, 5)
    top = t.loc[r, "logged_position"].eq(1).fillna(False).to_numpy(bool)
    return t.drop(r[~top])  # keep only the row shown first: positions stay in range


def too_many(t: pd.DataFrame) -> pd.DataFrame:
    extra = t.loc[rows(t, 4, shown=False)[:3]].copy()
    extra["item_id"] = [900001, 900002, 900003]
    return pd.concat([t, extra], ignore_index=True)  # request 4: 8 + 3 = 11 > MAX_CAND


def duplicate_position(t: pd.DataFrame) -> pd.DataFrame:
    shown = rows(t, 1, shown=True)
    return set_at(t, shown[1], "logged_position", t.loc[shown[0], "logged_position"])


def duplicate_item(t: pd.DataFrame) -> pd.DataFrame:
    r = rows(t, 7)
    return set_at(t, r[1], "item_id", t.loc[r[0], "item_id"])


def null_request_id(t: pd.DataFrame) -> pd.DataFrame:
    t["request_id"] = t["request_id"].astype(str)  # string ids are allowed too
    return set_at(t, rows(t, "2", shown=False)[:1], "request_id", None)


# name -> (corruption, expectation, column, n_failing, unit, example request ids)
Corruption = Callable[[pd.DataFrame], pd.DataFrame]
CASES: dict[str, tuple[Corruption, str, str, int, str, list[object]]] = {
    "null_context": (lambda t: set_at(t, rows(t, 3), "ctx_watch", np.nan),
                     "expect_column_values_to_not_be_null", "ctx_watch", N_CAND, "rows", [3]),
    "null_feature": (lambda t: set_at(t, rows(t, 7)[2:3], "feat_quality", np.nan),
                     "expect_column_values_to_not_be_null", "feat_quality", 1, "rows", [7]),
    "null_request_id": (null_request_id, "expect_column_values_to_not_be_null", "request_id", 1, "rows", [None]),
    "inf_feature": (lambda t: set_at(set_at(t, rows(t, 2)[:1], "feat_relevance", np.inf),
                                     rows(t, 5)[:1], "feat_relevance", -np.inf),
                    "expect_column_values_to_not_be_in_set", "feat_relevance", 2, "rows", [2, 5]),
    "inf_upstream_score": (lambda t: set_at(t, rows(t, 6)[:2], "upstream_score", np.inf),
                           "expect_column_values_to_not_be_in_set", "upstream_score", 2, "rows", [6]),
    "position_zero": (lambda t: set_at(t, rows(t, 4, shown=True)[:1], "logged_position", 0),
                      "expect_column_values_to_be_between", "logged_position", 1, "rows", [4]),
    "position_past_candidates": (lambda t: set_at(t, rows(t, 6, shown=True)[:1], "logged_position", N_CAND + 1),
                                 "expect_column_pair_values_a_to_be_greater_than_b", "logged_position", 1, "rows",
                                 [6]),
    "duplicate_position": (duplicate_position, "expect_compound_columns_to_be_unique", "logged_position", 2, "rows",
                           [1]),
    "feedback_on_unshown_row": (lambda t: set_at(t, rows(t, 8, shown=False)[:1], "click", 1),
                                "expect_column_values_to_be_null", "click", 1, "rows", [8]),
    "label_on_unshown_row": (lambda t: set_at(t, rows(t, 0, shown=False)[:2], "label_like", 0),
                             "expect_column_values_to_be_null", "label_like", 2, "rows", [0]),
    "missing_feedback_on_shown_row": (lambda t: set_at(t, rows(t, 9, shown=True)[:1], "watch_time", np.nan),
                                      "expect_column_values_to_not_be_null", "watch_time", 1, "rows", [9]),
    "negative_watch_time": (lambda t: set_at(t, rows(t, 0, shown=True)[:1].append(rows(t, 2, shown=True)[:1]),
                                             "watch_time", -1.5),
                            "expect_column_values_to_be_between", "watch_time", 2, "rows", [0, 2]),
    "click_not_binary": (lambda t: set_at(t, rows(t, 3, shown=True)[:1], "click", 2),
                         "expect_column_values_to_be_in_set", "click", 1, "rows", [3]),
    "satisfaction_not_binary": (lambda t: set_at(t, rows(t, 6), "satisfaction", 3),
                                "expect_column_values_to_be_in_set", "satisfaction", N_CAND, "rows", [6]),
    "duplicate_item": (duplicate_item, "expect_compound_columns_to_be_unique", "request_id,item_id", 2, "rows", [7]),
    "too_few_candidates": (too_few, "expect_column_values_to_be_between", "n_candidates", 1, "requests", [5]),
    "too_many_candidates": (too_many, "expect_column_values_to_be_between", "n_candidates", 1, "requests", [4]),
    "context_varies": (lambda t: set_at(t, rows(t, 3)[:1], "ctx_user_0", 123.0),
                       "expect_column_values_to_be_between", "ctx_user_0", 1, "requests", [3]),
    "ts_varies": (lambda t: set_at(t, rows(t, 8)[:1], "ts", 1), "expect_column_values_to_be_between", "ts", 1,
                  "requests", [8]),
    "satisfaction_varies": (lambda t: set_at(t, rows(t, 2)[:1], "satisfaction", 1 - t.loc[rows(t, 2)[0],
                                                                                           "satisfaction"]),
                            "expect_column_values_to_be_between", "satisfaction", 1, "requests", [2]),
    "missing_column": (lambda t: t.drop(columns=["logged_position"]), "expect_column_to_exist", "logged_position", 1,
                       "columns", []),
    "no_feedback_columns": (lambda t: t.drop(columns=["click", "watch_time", "label_like"]),
                            "expect_column_distinct_values_to_contain_set", "click|watch_time|label_*", 1, "columns",
                            []),
    "no_feature_columns": (lambda t: t.drop(columns=["feat_quality", "feat_relevance"]),
                           "expect_column_distinct_values_to_contain_set", "feat_*", 1, "columns", []),
    "no_upstream_columns": (lambda t: t.drop(columns=["upstream_score", "upstream_rank"]),
                            "expect_column_distinct_values_to_contain_set", "upstream_score|upstream_rank", 1,
                            "columns", []),
    "text_feature": (lambda t: t.assign(feat_quality=t["feat_quality"].astype(str)),
                     "expect_column_values_to_be_in_type_list", "feat_quality", 1, "columns", []),
}  # fmt: skip


def test_valid_world_table_passes(full_table: pd.DataFrame):
    report = validate_table(full_table, CFG, MAX_CAND)
    assert report.success, report.summary()
    assert (report.n_rows, report.n_requests, report.failures) == (10 * N_CAND, 10, [])
    # 2 column-family + 1 row-count + 6 exist + 51 dtype checks, then rows/feedback/requests suites
    assert report.n_checked > 150
    assert report.summary().startswith("validation passed: 80 rows, 10 requests")


def test_valid_subset_passes(table: pd.DataFrame):
    report = validate_table(table, CFG, MAX_CAND)
    assert report.success, report.summary()


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_corruption_fails_one_named_expectation(table: pd.DataFrame, name: str):
    corrupt, expectation, column, n_failing, unit, examples = CASES[name]
    report = validate_table(corrupt(table), CFG, MAX_CAND)
    assert not report.success
    assert len(report.failures) == 1, report.summary()
    f = report.failures[0]
    got = (f.expectation, f.column, f.n_failing, f.unit, f.examples)
    assert got == (expectation, column, n_failing, unit, examples)
    assert f.error is None
    assert f"FAILED {expectation} on {column}" in report.summary()
    json.dumps(report.to_dict(), allow_nan=False)  # strict JSON even with inf/NaN bad values


def test_report_lines_name_values_and_requests(table: pd.DataFrame):
    report = validate_table(CASES["negative_watch_time"][0](table), CFG, MAX_CAND)
    line = "FAILED expect_column_values_to_be_between on watch_time: 2 rows (requests 0, 2; values -1.5)"
    assert report.summary().splitlines()[1].strip().startswith(line)
    md = report.to_markdown()
    assert md.startswith("# Data validation: FAILED")
    assert "| `expect_column_values_to_be_between` | `watch_time` | watch_time >= 0 | 2 rows | 0, 2 | -1.5 |" in md
    d = report.to_dict()
    assert (d["success"], d["n_rows"], d["n_requests"], d["n_failed"]) == (False, 80, 10, 1)
    assert d["failures"][0]["bad_values"] == [-1.5]


def test_examples_are_capped_and_counts_exact(table: pd.DataFrame):
    ids = list(range(7))
    idx = [rows(table, r, shown=True)[0] for r in ids]
    report = validate_table(set_at(table, idx, "click", 5), replace(CFG, max_examples=3), MAX_CAND)
    (f,) = report.failures
    assert (f.n_failing, f.examples, f.bad_values) == (7, [0, 1, 2], [5])


def test_column_type_failure_stops_early_with_a_report(table: pd.DataFrame):
    report = validate_table(table.drop(columns=["request_id", "logged_position"]), CFG, MAX_CAND)
    assert [(f.expectation, f.column) for f in report.failures] == [
        ("expect_column_to_exist", "request_id"),
        ("expect_column_to_exist", "logged_position"),
    ]
    assert report.skipped is not None and report.n_requests == 0
    assert "skipped: row and request checks" in report.summary()
    json.dumps(report.to_dict(), allow_nan=False)


def write_params(root: Path, **sections: dict) -> None:
    """The repository's params.yaml under ``root``, with ``sections`` merged on top."""
    (root / "params.yaml").write_text(yaml.safe_dump(merge(repo_raw(), sections)))


def test_csv_round_trip(tmp_path: Path, table: pd.DataFrame, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "logs.csv"
    table.to_csv(path, index=False)  # positions/clicks come back as floats with NaN: still valid
    out = tmp_path / "reports" / "check.json"
    assert validate_file(path, tmp_path, out) == 2  # no params.yaml under the root: nothing to take limits from
    assert "params.yaml not found" in capsys.readouterr().err
    write_params(tmp_path)
    assert validate_file(path, tmp_path, out) == 0
    saved = json.loads(out.read_text())
    assert (saved["success"], saved["n_rows"], saved["n_requests"]) == (True, 80, 10)
    assert out.with_suffix(".md").read_text().startswith("# Data validation: passed")
    assert "validation passed: 80 rows, 10 requests" in capsys.readouterr().out


def test_cli_exit_codes(tmp_path: Path, table: pd.DataFrame, capsys: pytest.CaptureFixture[str]):
    write_params(tmp_path, data={"max_candidates": 10}, validate={"max_examples": 2})
    good, bad = tmp_path / "good.parquet", tmp_path / "bad.parquet"
    table.to_parquet(good, index=False)
    CASES["negative_watch_time"][0](table).to_parquet(bad, index=False)
    (tmp_path / "junk.parquet").write_bytes(b"not a parquet file")
    (tmp_path / "logs.txt").write_text("request_id\n1\n")

    def run(*args: str) -> int:
        return cli_main(["--root", str(tmp_path), "validate", *args])

    assert run(str(good)) == 0
    assert run(str(bad), "--report", str(tmp_path / "bad.json")) == 1
    assert json.loads((tmp_path / "bad.json").read_text())["failures"][0]["examples"] == [0, 2]
    assert (tmp_path / "bad.md").exists()
    capsys.readouterr()
    for name in ("junk.parquet", "logs.txt", "missing.parquet"):
        assert run(str(tmp_path / name)) == 2
        assert name in capsys.readouterr().err
    # params.yaml limits apply: 8 candidates per request > max_candidates 7
    write_params(tmp_path, data={"max_candidates": 7}, validate={"max_examples": 2})
    assert run(str(good)) == 1
    assert "n_candidates: 10 requests" in capsys.readouterr().out
