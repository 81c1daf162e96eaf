"""CSV input: the contract's timestamps arrive as text and are read as ISO-8601; anything else is an error
naming the file and the column."""

from __future__ import annotations

import pandas as pd
import pytest

from dualrerank.data.tables import read_table


def test_csv_text_timestamps_are_parsed_and_integers_kept(tmp_path):
    (tmp_path / "a.csv").write_text("request_id,ts,item_id\nr1,2026-03-01T08:00:00,x\nr2,2026-03-01 08:07:00,y\n")
    (tmp_path / "b.csv").write_text("request_id,ts,item_id\nr1,100,x\nr2,160,y\n")
    a = read_table(tmp_path / "a.csv")
    assert a["ts"].tolist() == [pd.Timestamp("2026-03-01 08:00"), pd.Timestamp("2026-03-01 08:07")]
    assert read_table(tmp_path / "b.csv")["ts"].tolist() == [100, 160]


def test_unparseable_ts_names_file_and_column(tmp_path):
    (tmp_path / "c.csv").write_text("request_id,ts,item_id\nr1,yesterday,x\n")
    with pytest.raises(ValueError, match=r"c.csv: column ts is neither numeric nor ISO-8601"):
        read_table(tmp_path / "c.csv")
