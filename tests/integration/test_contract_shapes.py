"""Any table that validation accepts runs every production stage to the end (property-based).

Hypothesis draws small log tables over the variations the data contract allows: each optional column present or
absent (request-level outcomes, ``click``, ``watch_time``, extra ``label_*``, ``upstream_score`` or only
``upstream_rank``, context columns), request ids as strings or integers, ``ts`` as integers or timestamps, CSV or
Parquet, requests with fewer candidates than the page, constant feature columns. Each table is validated; when it
passes, the whole production cycle runs on it in-process with the tiny profile and must finish with a report that
says which figures it could not compute. The business objective is set, as a user would, to the feedback columns
the table has.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from dualrerank.config import load_params
from dualrerank.data.tables import read_table
from dualrerank.stages import STAGES
from dualrerank.stages.runner import execute
from dualrerank.validation.check import validate_table

ITEM_FEEDBACK = ("click", "watch_time", "label_like")
PAGE_FEEDBACK = ("satisfaction", "reformulated")
UPSTREAM = [("upstream_score",), ("upstream_rank",), ("upstream_score", "upstream_rank")]
REQUIRED_ONLY = {
    "item_feedback": ("watch_time",), "page_feedback": (), "upstream": ("upstream_score",), "context": False,
    "int_ids": False, "int_ts": False, "csv": False, "short_requests": False, "constant_feature": False, "seed": 0,
}  # fmt: skip
EVERYTHING_AS_TEXT = {  # every optional column, in CSV, with integer ids and times
    "item_feedback": ITEM_FEEDBACK, "page_feedback": PAGE_FEEDBACK, "upstream": ("upstream_score", "upstream_rank"),
    "context": True, "int_ids": True, "int_ts": True, "csv": True, "short_requests": False,
    "constant_feature": False, "seed": 1,
}  # fmt: skip
SPARSE = {  # one rare label as the only feedback, only a rank, short requests, a constant feature
    "item_feedback": ("label_like",), "page_feedback": ("reformulated",), "upstream": ("upstream_rank",),
    "context": False, "int_ids": False, "int_ts": True, "csv": False, "short_requests": True,
    "constant_feature": True, "seed": 2,
}  # fmt: skip


@st.composite
def shapes(draw: st.DrawFn) -> dict:
    """One variation of the contract (the table itself is built from it, deterministically)."""
    return {
        "item_feedback": tuple(draw(st.lists(st.sampled_from(ITEM_FEEDBACK), min_size=1, max_size=3, unique=True))),
        "page_feedback": tuple(draw(st.lists(st.sampled_from(PAGE_FEEDBACK), max_size=2, unique=True))),
        "upstream": draw(st.sampled_from(UPSTREAM)),
        "context": draw(st.booleans()),
        "int_ids": draw(st.booleans()),
        "int_ts": draw(st.booleans()),
        "csv": draw(st.booleans()),
        "short_requests": draw(st.booleans()),
        "constant_feature": draw(st.booleans()),
        "seed": draw(st.integers(0, 3)),
    }  # fmt: skip


def contract_table(shape: dict, n_requests: int = 40, n_cand: int = 7, page: int = 4) -> pd.DataFrame:
    """A log table of ``shape``: a made-up click story (no world), one row per (request, candidate)."""
    rng = np.random.default_rng(shape["seed"])
    rows = []
    start = pd.Timestamp("2026-03-01 08:00")
    for r in range(n_requests):
        n = 2 if shape["short_requests"] and r % 5 == 0 else n_cand  # 2 candidates, fewer than the page
        quality = rng.normal(size=n)
        upstream = quality + rng.normal(size=n)
        order = np.argsort(-(upstream + rng.gumbel(size=n)))
        position = {int(c): k + 1 for k, c in enumerate(order[:page])}
        clicks = {c: int(rng.random() < 1 / (1 + np.exp(-(quality[c] - 0.3 * p)))) for c, p in position.items()}
        for c in range(n):
            pos = position.get(c)
            row = {
                "request_id": r if shape["int_ids"] else f"req-{r:03d}",
                "ts": 100 * r if shape["int_ts"] else start + pd.Timedelta(minutes=7 * r),
                "item_id": f"doc-{c}",
                "feat_quality_guess": float(quality[c] + rng.normal(scale=0.5)),
                "logged_position": pos,
            }
            if shape["constant_feature"]:
                row["feat_constant"] = 1.0
            if shape["context"]:
                row["ctx_hour"] = float(r % 24)
            for u in shape["upstream"]:
                row[u] = float(upstream[c]) if u == "upstream_score" else int(np.argsort(np.argsort(-upstream))[c] + 1)
            click = None if pos is None else clicks[c]
            feedback = {"click": click, "watch_time": None if pos is None else float(click * rng.exponential(40.0)),
                        "label_like": None if pos is None else int(click and rng.random() < 0.3)}  # fmt: skip
            row |= {name: feedback[name] for name in shape["item_feedback"]}
            rows.append(row)
        n_clicks = sum(clicks.values())
        outcomes = {"satisfaction": int(n_clicks >= 2), "reformulated": int(n_clicks == 0)}
        for row in rows[-n:]:
            row |= {name: outcomes[name] for name in shape["page_feedback"]}
    table = pd.DataFrame(rows)
    for col in ("logged_position", "click", "label_like"):
        if col in table:
            table[col] = table[col].astype("Int64")
    return table


def write_table(table: pd.DataFrame, shape: dict, folder: Path) -> Path:
    path = folder / ("logs.csv" if shape["csv"] else "logs.parquet")
    table.to_csv(path, index=False) if shape["csv"] else table.to_parquet(path, index=False)
    return path


def user_reward(shape: dict) -> dict:
    """The business objective a user writes for this table: a weight on each feedback column it has."""
    item = {"click": 0.5, "watch_time": 1 / 60, "label_like": 1.0}
    page = {"satisfaction": 2.0, "reformulated": -2.0}
    return {
        "item": {c: item[c] for c in shape["item_feedback"]},
        "page": {c: page[c] for c in shape["page_feedback"]},
    }


def project(root: Path, path: Path, reward: dict, make_tiny_params) -> None:
    raw = make_tiny_params()
    raw["data"].update(source="parquet", path=str(path), val_fraction=0.2, test_fraction=0.2)
    raw["data"]["reward"].update(reward)
    (root / "params.yaml").write_text(yaml.safe_dump(raw))


@pytest.mark.integration
@settings(
    max_examples=3,  # each example is a whole (tiny) production cycle: seconds
    deadline=None,
    derandomize=True,  # the same examples on every run (CI), drawn afresh when the strategy changes
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a failing shape is printed whole, and is small
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@example(shape=REQUIRED_ONLY)
@example(shape=EVERYTHING_AS_TEXT)
@example(shape=SPARSE)
@given(shape=shapes())
def test_any_table_validation_accepts_runs_every_stage(shape, tmp_path_factory, make_tiny_params, capsys):
    root = tmp_path_factory.mktemp("shape")
    path = write_table(contract_table(shape), shape, root)
    project(root, path, user_reward(shape), make_tiny_params)
    params = load_params(root / "params.yaml")
    report = validate_table(read_table(path), params.validate, params.data.max_candidates, params.data.reward)
    assert report.success, report.summary()  # every drawn shape is within the contract
    for stage in STAGES:
        execute(stage, root=root, track=False)

    metrics = json.loads((root / "data/reports/metrics.json").read_text())
    assert {"upstream", "score_and_sort", "ar_greedy", "nar_kd", "nar_ldro"} <= set(metrics["policies"])
    missing = metrics["not_computed"]
    for name, row in metrics["policies"].items():
        assert row["true_utility"] is None and row["headroom_captured"] is None, name
        for field in ("evaluator_utility", "heldout_evaluator_utility"):
            assert isinstance(row[field], float) and math.isfinite(row[field]), (name, field)
        # NDCG is null only where no test request has a positive logged reward (nothing to rank by)
        assert (row["ndcg_at_k"] is None) == (row["ndcg_at_k_shown"] is None), name
        if row["ndcg_at_k_shown"] is not None:
            assert 0.0 <= row["ndcg_at_k_shown"] <= 1.0 and 0.0 <= row["ndcg_at_k"] <= 1.0, name
        else:
            assert "ndcg_at_k" in missing, name  # and the report says why
    assert "true_utility" in missing and "world" in missing["true_utility"]
    if not shape["page_feedback"]:
        assert "page_outcomes" in missing
    release = json.loads((root / "data/reports/release.json").read_text())
    assert release["checks"]["candidate_gain_vs_score_and_sort"]["value"] is not None

    from dualrerank.evaluation.summary import print_summary

    capsys.readouterr()
    assert print_summary(root) == 0
    out = capsys.readouterr().out
    assert "Not computed" in out and "true utility" in out


@pytest.mark.parametrize(
    "shape, reward, column",
    [
        (REQUIRED_ONLY, {"page": {"satisfaction": 2.0}}, "satisfaction"),  # the objective weighs an absent outcome
        (REQUIRED_ONLY, {"item": {"click": 1.0, "watch_time": 1 / 60}}, "click"),
    ],
)
def test_a_reward_on_an_absent_column_stops_validation_naming_it(shape, reward, column, tmp_path, make_tiny_params):
    path = write_table(contract_table(shape, n_requests=6), shape, tmp_path)
    project(tmp_path, path, {**user_reward(shape), **reward}, make_tiny_params)
    params = load_params(tmp_path / "params.yaml")
    report = validate_table(read_table(path), params.validate, params.data.max_candidates, params.data.reward)
    assert not report.success
    failure = next(f for f in report.failures if f.column == column)
    assert "data.reward" in failure.rule


def test_zero_weights_on_absent_columns_are_switched_off(tmp_path, make_tiny_params):
    path = write_table(contract_table(REQUIRED_ONLY, n_requests=6), REQUIRED_ONLY, tmp_path)
    project(tmp_path, path, {"item": {"watch_time": 1 / 60, "click": 0.0}, "page": {"satisfaction": 0.0}},
            make_tiny_params)  # fmt: skip
    params = load_params(tmp_path / "params.yaml")
    report = validate_table(read_table(path), params.validate, params.data.max_candidates, params.data.reward)
    assert report.success, report.summary()
