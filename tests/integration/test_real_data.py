"""The whole pipeline on data that does not come from the simulated world.

* A Parquet table written here by hand (no world code): every stage runs, the report keeps logged-label and
  evaluator metrics and leaves every true-utility field null.
* LETOR/SVMlight files written here: the click-model world gives true utility, the oracle and headroom, and
  the report adds NDCG on graded labels.
Both iterate ``STAGES``, so stages added later are covered too.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import Slates
from dualrerank.models.components import FeatureInput, SlateInputs
from dualrerank.models.io import load_as
from dualrerank.models.teacher import ARTeacher
from dualrerank.paths import Paths
from dualrerank.stages import STAGES
from dualrerank.stages.runner import execute

TRUTH_FIELDS = ("true_utility", "true_utility_ci95", "headroom_captured")


def handwritten_logs(n_requests: int = 150, n_cand: int = 8, page: int = 5, seed: int = 0) -> pd.DataFrame:
    """A log table in the data contract, built row by row from a made-up click story (no world code)."""
    rng = np.random.default_rng(seed)
    rows = []
    start = pd.Timestamp("2026-03-01 08:00")
    for r in range(n_requests):
        quality = rng.normal(size=n_cand)  # hidden: what users like
        upstream = quality + rng.normal(size=n_cand)
        shown = np.argsort(-(upstream + rng.gumbel(size=n_cand)))[:page]
        position = {int(c): k + 1 for k, c in enumerate(shown)}
        clicks = []
        for c in range(n_cand):
            pos = position.get(c)
            click = None if pos is None else int(rng.random() < 1 / (1 + np.exp(-(quality[c] - 0.3 * pos))))
            clicks.append(click)
            rows.append({
                "request_id": f"req-{r:04d}",
                "ts": start + pd.Timedelta(minutes=7 * r),
                "item_id": f"doc-{rng.integers(1e6)}-{c}",
                "ctx_hour": float((8 + 7 * r / 60) % 24),
                "feat_quality_guess": float(quality[c] + rng.normal(scale=0.5)),
                "feat_length": float(rng.exponential()),
                "upstream_score": float(upstream[c]),
                "logged_position": pos,
                "click": click,
                "watch_time": None if pos is None else float(click * rng.exponential(40.0)),
            })  # fmt: skip
        n_clicks = sum(c or 0 for c in clicks)
        for row in rows[-n_cand:]:
            row["satisfaction"] = int(n_clicks >= 2)
            row["reformulated"] = int(n_clicks == 0)
    table = pd.DataFrame(rows)
    for col in ("logged_position", "click"):
        table[col] = table[col].astype("Int64")
    return table


def tiny(root: Path) -> dict:
    """The tiny profile ``tiny_root`` holds (tests/conftest.py), to be edited."""
    return yaml.safe_load((root / "params.yaml").read_text())


def run_all(root: Path, raw: dict) -> dict:
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    for stage in STAGES:
        execute(stage, root=root, track=False)
    return json.loads((root / "data/reports/metrics.json").read_text())


@pytest.mark.integration
def test_handwritten_parquet_runs_every_stage_with_null_truth(tiny_root):
    tmp_path = tiny_root
    handwritten_logs().to_parquet(tmp_path / "my_logs.parquet", index=False)
    raw = tiny(tmp_path)
    raw["data"].update(source="parquet", path="my_logs.parquet", val_fraction=0.15, test_fraction=0.2)
    report = run_all(tmp_path, raw)

    assert json.loads((tmp_path / "data/raw/truth/source.json").read_text())["ground_truth"] is False
    assert not (tmp_path / "data/raw/truth/world.npz").exists()
    assert report["oracle"] == {"utility": None, "method": None}
    assert report["n_test_requests"] == 30
    # no world, no offline exploration: fine-tuning's reward is the logged evaluator, byte for byte
    explore = json.loads((tmp_path / "data/reports/explore.json").read_text())
    assert explore == {"round": False, "reason": "no world: logs cannot be explored offline"}
    with np.load(tmp_path / "data/explore/logs.npz") as z:  # every output DVC expects exists: a round of no pages
        assert len(z["request_id"]) == 0 and z["page"].shape[0] == 0
    for role in ("evaluator", "evaluator_heldout"):
        models = tmp_path / "data/models"
        assert (models / f"{role}.ckpt").read_bytes() == (models / f"{role}_explore.ckpt").read_bytes()
    policies = report["policies"]
    assert {"upstream", "score_and_sort", "ar_greedy", "nar_kd"} <= set(policies)
    for name, row in policies.items():
        assert all(row[f] is None for f in TRUTH_FIELDS), name
        assert "graded_ndcg_at_k" not in row
        for f in ("ndcg_at_k", "recall_at_v", "evaluator_utility", "heldout_evaluator_utility", "latency_ms_p50"):
            assert isinstance(row[f], float) and math.isfinite(row[f]), (name, f)
        assert 0.0 < row["ndcg_at_k"] <= 1.0


def letor_files(folder: Path, n_train: int, n_test: int, seed: int = 0) -> None:
    """SVMlight files whose grades follow feature 2 (noisy), with feature 1 a weak baseline."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for name, n_queries, first in (("train.txt", n_train, 1), ("test.txt", n_test, 1000)):
        lines = []
        for q in range(first, first + n_queries):
            for _ in range(int(rng.integers(8, 14))):
                signal = rng.normal()
                grade = int(np.clip(np.round(1.2 * signal + 1.2 + rng.normal(scale=0.4)), 0, 4))
                f1 = signal + rng.normal(scale=2.0)
                lines.append(f"{grade} qid:{q} 1:{f1:.4f} 2:{signal + rng.normal(scale=0.3):.4f} 4:{rng.random():.3f}")
        (folder / name).write_text("\n".join(lines) + "\n")


@pytest.mark.integration
def test_svmlight_runs_every_stage_with_click_model_truth(tiny_root):
    tmp_path = tiny_root
    letor_files(tmp_path / "letor", n_train=60, n_test=12)
    raw = tiny(tmp_path)
    raw["data"].update(source="svmlight", path="letor", val_fraction=0.2)
    raw["data"]["svmlight"].update(n_candidates=8, baseline_feature=1, sessions_per_query=2)
    report = run_all(tmp_path, raw)

    world = json.loads((tmp_path / "data/reports/world.json").read_text())
    assert world["n_test_requests"] == 12 and world["n_candidates"] == 8
    assert report["n_test_requests"] == 12
    oracle = report["oracle"]["utility"]
    policies = report["policies"]
    for name, row in policies.items():
        assert row["true_utility"] is not None and row["true_utility"] <= oracle + 1e-9, name
        assert row["headroom_captured"] is not None, name
        assert 0.0 < row["graded_ndcg_at_k"] <= 1.0, name
    assert policies["score_and_sort"]["headroom_captured"] == pytest.approx(0.0)

    # feature normalisation was fitted on the training split alone
    teacher, _ = load_as(Paths(tmp_path).model("teacher"), ARTeacher)
    x = SlateInputs.from_batch(slate_tensors(Slates.load(Paths(tmp_path).split("train"))))
    train_mean = FeatureInput.raw_item_inputs(x)[~x.pad_mask].mean(0)
    torch.testing.assert_close(teacher.encoder.inputs.item_mean, train_mean)
