"""The live loop's impression log: partitions per round, idempotent by request id, atomic, quarantine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dualrerank.live.logstore import LogStore


def impressions(requests: list[str], arm: str = "ldro", candidates: int = 3) -> pd.DataFrame:
    rows = [
        {
            "request_id": r,
            "ts": i,
            "item_id": f"{r}-{c}",
            "logged_position": c + 1 if c < 2 else None,
            "click": float(c == 0),
            "arm": arm,
            "model_version": "3",
            "n_samples": 16,
        }
        for i, r in enumerate(requests)
        for c in range(candidates)
    ]
    return pd.DataFrame(rows)


def test_rerunning_a_round_adds_only_the_requests_not_yet_logged(tmp_path):
    store = LogStore(tmp_path)
    assert store.append(0, impressions(["a", "b"])).written == 6
    again = store.append(0, impressions(["b", "c"]))  # a rerun that got one request further
    assert (again.written, again.duplicated) == (3, 3)
    assert store.append(1, impressions(["a"], arm="grpo")).duplicated == 3  # already logged in round 0
    logged = store.read()
    assert store.rounds() == [0]
    assert sorted(logged["request_id"].unique()) == ["a", "b", "c"]
    assert len(logged) == 9 and set(logged["round"]) == {0}
    assert not logged.duplicated(["request_id", "item_id"]).any()


def test_partitions_read_back_by_round_and_as_one_dataset(tmp_path):
    store = LogStore(tmp_path)
    store.append(0, impressions(["a"]))
    store.append(2, impressions(["b", "c"], arm="control"))
    assert store.rounds() == [0, 2]
    assert store.read([2])["arm"].unique().tolist() == ["control"]
    assert len(pd.read_parquet(tmp_path)) == 9  # the folder is one hive-partitioned dataset


def test_a_crash_while_writing_leaves_the_previous_partition_whole(tmp_path, monkeypatch):
    store = LogStore(tmp_path)
    store.append(0, impressions(["a"]))

    def crash(self, path, **kwargs):
        Path(path).write_bytes(b"half a parquet file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash)
    with pytest.raises(OSError, match="disk full"):
        store.append(0, impressions(["b"]))
    monkeypatch.undo()
    assert store.read()["request_id"].unique().tolist() == ["a"]
    assert [p.name for p in store.partition(0).parent.iterdir()] == ["impressions.parquet"]  # no temporary left


def test_impressions_must_say_who_served_them(tmp_path):
    with pytest.raises(ValueError, match=r"\['arm', 'model_version'\]"):
        LogStore(tmp_path).append(0, impressions(["a"]).drop(columns=["arm", "model_version"]))


def test_a_quarantined_partition_moves_out_of_the_dataset_with_its_report_and_stays_logged(tmp_path):
    store = LogStore(tmp_path)
    store.append(0, impressions(["a"]))
    store.append(1, impressions(["b"]))
    folder = store.quarantine(1, "FAILED expect_column_values_to_not_be_null on ts: rows [0]")
    assert store.rounds() == [0] and not store.partition(1).exists()
    assert "ts" in (folder / "report.md").read_text()
    assert len(pd.read_parquet(folder / "impressions.parquet")) == 3  # nothing lost
    assert pd.read_parquet(tmp_path)["request_id"].unique().tolist() == ["a"]  # the dataset skips the quarantine
    assert "b" in store.request_ids()  # it was served: a rerun must not serve and log it again
    assert store.append(1, impressions(["b"])).duplicated == 3
