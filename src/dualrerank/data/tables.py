"""Reading the user's log tables (Parquet or CSV) into the contract's pandas types."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dualrerank.data import schema as S


def read_table(path: Path) -> pd.DataFrame:
    """Read a Parquet (``.parquet``/``.pq``) or CSV (``.csv``) table, chosen by extension; a CSV's text
    ``ts`` is parsed as ISO-8601 timestamps."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix == ".csv":
        return _parse_ts(pd.read_csv(path), path)
    raise ValueError(f"cannot tell the format of {path}: expected a .parquet, .pq or .csv file")


def _parse_ts(table: pd.DataFrame, path: Path) -> pd.DataFrame:
    """CSV has no types: a text ``ts`` column is read as ISO-8601 timestamps (the contract's "timestamp")."""
    if S.TS not in table.columns or pd.api.types.is_numeric_dtype(table[S.TS]):
        return table
    try:
        table[S.TS] = pd.to_datetime(table[S.TS], format="ISO8601")
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: column ts is neither numeric nor ISO-8601 timestamps ({exc})") from exc
    return table
