"""The long table becomes padded, time-ordered slates with pages as candidate indices."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dualrerank.data.schema import PAD_INDEX
from dualrerank.data.slates import SlateMeta, Slates, split_bounds, table_to_slates
from dualrerank.data.targets import build_targets, item_reward, page_reward


def tiny_table() -> pd.DataFrame:
    """Two requests (the later one first in the file): 3 and 2 candidates, pages of 2 and 1 items."""
    rows = [
        # request_id, ts, item_id, upstream_rank, logged_position, click, watch_time
        ("b", 20, "x", 2, 1, 1, 30.0),
        ("b", 20, "y", 1, None, None, None),
        ("a", 10, "p", 1, 2, 1, 120.0),
        ("a", 10, "q", 3, None, None, None),
        ("a", 10, "r", 2, 1, 1, 60.0),
    ]
    df = pd.DataFrame(
        rows, columns=["request_id", "ts", "item_id", "upstream_rank", "logged_position", "click", "watch_time"]
    )
    df["logged_position"] = df["logged_position"].astype("Int64")
    df["click"] = df["click"].astype("Int64")
    df["upstream_score"] = -df["upstream_rank"].astype(float)
    df["feat_a"] = np.arange(5, dtype=float)
    df["ctx_u"] = df["request_id"].map({"a": 1.0, "b": 2.0})
    df["satisfaction"] = df["request_id"].map({"a": 1, "b": 0})
    return df


def test_table_to_slates_orders_by_time_and_upstream_rank_and_pads():
    slates, names = table_to_slates(tiny_table())
    assert list(slates.request_id) == ["a", "b"]
    assert slates.item_id.tolist() == [["p", "r", "q"], ["y", "x", ""]]
    assert slates.pad_mask.tolist() == [[False, False, False], [False, False, True]]
    # request a: r (candidate 1) was logged first, p (candidate 0) second; request b: x (candidate 1) only
    assert slates.logged_page.tolist() == [[1, 0], [1, PAD_INDEX]]
    assert names["feedback"] == ["click", "watch_time"]
    assert slates.feedback[0, 0].tolist() == [1.0, 120.0] and slates.feedback[0, 2].tolist() == [0.0, 0.0]
    assert slates.context[:, 0].tolist() == [1.0, 2.0]
    assert slates.shown.tolist() == [[True, True, False], [False, True, False]]


def test_slates_round_trip_through_npz(tmp_path):
    slates, _ = table_to_slates(tiny_table())
    slates.save(tmp_path / "s.npz")
    back = Slates.load(tmp_path / "s.npz")
    for name in Slates.__dataclass_fields__:
        np.testing.assert_array_equal(getattr(back, name), getattr(slates, name))


def test_rank_is_derived_from_score_when_missing():
    table = tiny_table().drop(columns=["upstream_rank"])
    slates, _ = table_to_slates(table)
    assert slates.item_id.tolist()[0] == ["p", "r", "q"]


def test_split_bounds_are_time_ordered_and_reject_empty_splits():
    b = split_bounds(10, n_val=2, n_test=3)
    assert (b["train"], b["val"], b["test"]) == (slice(0, 5), slice(5, 7), slice(7, 10))
    with pytest.raises(ValueError, match="at least one request"):
        split_bounds(3, n_val=2, n_test=1)


def _meta(names: dict) -> SlateMeta:
    return SlateMeta(max_candidates=3, page_len=2, n_requests={}, source="test", **names)


def test_rewards_and_targets():
    slates, names = table_to_slates(tiny_table())
    meta = _meta(names)
    w = {"watch_time": 1 / 60, "click": 0.5}
    np.testing.assert_allclose(item_reward(slates, meta, w), [[2.5, 1.5, 0.0], [0.0, 1.0, 0.0]])
    np.testing.assert_allclose(page_reward(slates, meta, w, {"satisfaction": 2.0}), [6.0, 1.0])
    sorted_t, weights = build_targets(slates, meta, w, {}, "reward_sorted")
    # p (candidate 0, logged second) earned more than r (candidate 1, logged first): sorted puts p first
    assert sorted_t.tolist() == [[0, 1], [1, PAD_INDEX]] and weights.tolist() == [1.0, 1.0]
    logged_t, _ = build_targets(slates, meta, w, {}, "logged")
    assert logged_t.tolist() == [[1, 0], [1, PAD_INDEX]]
    _, rw = build_targets(slates, meta, w, {"satisfaction": 2.0}, "reward_weighted")
    assert rw[0] > rw[1] and np.isclose(rw.mean(), 1.0)
    with pytest.raises(KeyError, match="absent from the data"):
        item_reward(slates, meta, {"dwell": 1.0})
