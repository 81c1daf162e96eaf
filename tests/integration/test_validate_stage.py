"""The ``validate`` stage: a corrupted table stops the pipeline, writes its report and touches nothing
else; a valid one writes the report and the processed splits."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from dualrerank.config import replace
from dualrerank.paths import Paths
from dualrerank.stages.validate import ValidationFailed, run
from dualrerank.world.logs import log_table
from dualrerank.world.simulator import World
from repo_params import repo_params

pytestmark = pytest.mark.integration

PARAMS = repo_params()
WORLD = replace(PARAMS.world, n_train_requests=6, n_val_requests=2, n_test_requests=2, n_candidates=8, page_len=4)


@pytest.fixture(scope="module")
def logs() -> pd.DataFrame:
    return log_table(World.generate(WORLD), seed=1)


def test_failed_validation_writes_report_and_leaves_processed_data_alone(tmp_path: Path, logs: pd.DataFrame):
    paths = Paths(tmp_path)
    paths.raw.mkdir(parents=True)
    bad = logs.copy()
    bad.loc[bad["request_id"] == 3, "ctx_watch"] = float("nan")  # 8 rows of request 3
    bad.to_parquet(paths.logs, index=False)
    paths.processed.mkdir(parents=True)
    before = b"previous split, must survive a failed validation"
    paths.split("train").write_bytes(before)

    with pytest.raises(ValidationFailed) as info:
        run(replace(PARAMS, world=WORLD), paths)

    assert "FAILED expect_column_values_to_not_be_null on ctx_watch: 8 rows (requests 3)" in str(info.value)
    saved = json.loads(paths.report("validation.json").read_text())
    assert saved["success"] is False
    assert [(f["column"], f["n_failing"], f["examples"]) for f in saved["failures"]] == [("ctx_watch", 8, [3])]
    assert "`ctx_watch`" in paths.report("validation.md").read_text()
    assert paths.split("train").read_bytes() == before
    assert sorted(p.name for p in paths.processed.iterdir()) == ["train.npz"]


def test_valid_logs_are_split_and_reported(tmp_path: Path, logs: pd.DataFrame):
    paths = Paths(tmp_path)
    paths.raw.mkdir(parents=True)
    logs.to_parquet(paths.logs, index=False)

    summary = run(replace(PARAMS, world=WORLD), paths)

    assert (summary["n_requests"], summary["n_train"], summary["n_val"], summary["n_test"]) == (10, 6, 2, 2)
    assert json.loads(paths.report("validation.json").read_text())["success"] is True
    assert paths.report("validation.md").read_text().startswith("# Data validation: passed")
    assert sorted(p.name for p in paths.processed.iterdir()) == ["meta.json", "test.npz", "train.npz", "val.npz"]
