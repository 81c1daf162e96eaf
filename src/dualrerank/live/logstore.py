"""The live loop's impression log: served pages and their feedback, one Parquet partition per round.

Rows follow the input data contract (``data.schema``: one row per (request, candidate), ``logged_position`` = the
slot the served page put the candidate on, null if not shown) plus who served them (``SERVED_COLUMNS``: the arm, the
model version and the Best-of-N size). Partitions live at ``ROOT/round=NNNN/impressions.parquet``, so the folder
reads as one hive-partitioned dataset (``pandas.read_parquet(ROOT)``) and DVC versions it as one output.

Guarantees a rerun relies on:

- **idempotent by request id**: a request already in the store (in any round) is never written again; ``append``
  says how many rows it skipped, so a rerun of a half-finished round adds only what is missing;
- **atomic**: a partition is written to a temporary file in its own folder and renamed over the old one, so a
  crash mid-write leaves the previous partition whole;
- **quarantine**: a partition that fails validation goes to ``ROOT/_quarantine/round=NNNN/`` with its report, out of
  the dataset (Parquet readers skip ``_`` and ``.`` names), and nothing is lost.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from dualrerank.data.schema import REQUEST_ID

ARM, MODEL_VERSION, N_SAMPLES = "arm", "model_version", "n_samples"
SERVED_COLUMNS = (ARM, MODEL_VERSION, N_SAMPLES)
PARTITION_FILE = "impressions.parquet"


@dataclass(frozen=True)
class Appended:
    """What ``LogStore.append`` did: rows written, and rows skipped because their request was already logged."""

    written: int
    duplicated: int


@dataclass
class LogStore:
    """The store at ``root``, for one writer at a time (the loop): the logged request ids are read from disk once,
    then kept up to date by ``append``."""

    root: Path
    _ids: set[str] | None = field(default=None, init=False, repr=False, compare=False)

    def partition(self, round_: int) -> Path:
        return self.root / f"round={round_:04d}" / PARTITION_FILE

    def rounds(self) -> list[int]:
        """The rounds with a partition, in order (quarantined ones excluded)."""
        found = (p.parent.name for p in self.root.glob(f"round=*/{PARTITION_FILE}"))
        return sorted(int(name.split("=", 1)[1]) for name in found)

    def read(self, rounds: list[int] | None = None) -> pd.DataFrame:
        """Every logged row (or those of ``rounds``), with a ``round`` column, in round order."""
        parts = [
            pd.read_parquet(self.partition(r)).assign(round=r) for r in self.rounds() if rounds is None or r in rounds
        ]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def quarantined(self, round_: int) -> Path:
        return self.root / "_quarantine" / f"round={round_:04d}" / PARTITION_FILE

    def request_ids(self) -> set[str]:
        """The ids of every logged request, across rounds, quarantined partitions included (they were served)."""
        return set(self._known())

    def _known(self) -> set[str]:
        if self._ids is None:
            files = [self.partition(r) for r in self.rounds()]
            files += sorted(self.root.glob(f"_quarantine/round=*/{PARTITION_FILE}"))
            self._ids = set()
            for path in files:
                self._ids.update(pd.read_parquet(path, columns=[REQUEST_ID])[REQUEST_ID].astype(str))
        return self._ids

    def append(self, round_: int, table: pd.DataFrame) -> Appended:
        """Add ``table``'s rows to round ``round_``'s partition, skipping requests the store already holds."""
        missing = [c for c in (REQUEST_ID, *SERVED_COLUMNS) if c not in table.columns]
        if missing:
            raise ValueError(f"impressions need the columns {missing} (who served them); got {list(table.columns)}")
        known = self._known()
        seen = table[REQUEST_ID].astype(str).isin(known)
        new = table.loc[~seen]
        if len(new):
            path = self.partition(round_)
            merged = pd.concat([pd.read_parquet(path), new], ignore_index=True) if path.exists() else new
            write_atomically(merged, path)
            known.update(new[REQUEST_ID].astype(str))
        return Appended(written=len(new), duplicated=int(seen.sum()))

    def quarantine(self, round_: int, report: str) -> Path:
        """Move round ``round_``'s partition, which failed validation, out of the dataset with its report (nothing
        is deleted: the file is renamed); returns its new folder."""
        target = self.quarantined(round_)
        target.parent.mkdir(parents=True, exist_ok=True)
        (target.parent / "report.md").write_text(report)
        os.replace(self.partition(round_), target)
        self.partition(round_).parent.rmdir()
        return target.parent


def write_atomically(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` to ``path`` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        table.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
