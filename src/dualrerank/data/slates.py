"""Padded slate arrays built from the long-format table, and their time-ordered splits.

Candidates of a request are ordered by upstream rank (ties: item id), so candidate index 0 is the
upstream's top item; pages are stored as candidate indices into that order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from dualrerank.data import schema as S


@dataclass(frozen=True)
class Slates:
    """``R`` requests padded to ``N`` candidates; ``K`` = longest logged page."""

    request_id: np.ndarray  # [R] str
    ts: np.ndarray  # [R] int64
    item_id: np.ndarray  # [R, N] str ("" on padding)
    item_features: np.ndarray  # [R, N, F] float32
    context: np.ndarray  # [R, Fc] float32
    upstream_score: np.ndarray  # [R, N] float32
    upstream_rank: np.ndarray  # [R, N] float32, 1-based (0 on padding)
    pad_mask: np.ndarray  # [R, N] bool, True = padding
    logged_page: np.ndarray  # [R, K] int64 candidate index per logged slot, PAD_INDEX if empty
    feedback: np.ndarray  # [R, N, L] float32 per-item feedback (0 where not shown)
    page_feedback: np.ndarray  # [R, P] float32 request-level feedback (NaN if missing)

    def __len__(self) -> int:
        return int(self.request_id.shape[0])

    def subset(self, index: np.ndarray | slice) -> Slates:
        return Slates(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @property
    def shown(self) -> np.ndarray:
        """[R, N] True where the candidate was on the logged page."""
        out = np.zeros(self.pad_mask.shape, dtype=bool)
        page = self.logged_page
        r, k = np.nonzero(page >= 0)
        out[r, page[r, k]] = True
        return out

    @property
    def slot_feedback(self) -> np.ndarray:
        """[R, K, L] the feedback of the logged page, slot by slot (0 on empty slots)."""
        page = self.logged_page
        out = np.take_along_axis(self.feedback, np.clip(page, 0, None)[..., None], axis=1)
        return np.where((page >= 0)[..., None], out, 0.0).astype(self.feedback.dtype)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            np.savez(fh, **{f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def load(cls, path: Path) -> Slates:
        with np.load(path, allow_pickle=False) as z:
            return cls(**{f.name: z[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class SlateMeta:
    """What later stages need to know about the data: written next to the splits as ``meta.json``."""

    item_features: list[str]
    context_features: list[str]
    feedback: list[str]  # per-item feedback columns, in the order of ``Slates.feedback``
    page_feedback: list[str]  # request-level columns, in the order of ``Slates.page_feedback``
    max_candidates: int
    page_len: int
    n_requests: dict[str, int]
    source: str

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.__dict__, indent=2))

    @classmethod
    def load(cls, path: Path) -> SlateMeta:
        return cls(**json.loads(path.read_text()))


def table_to_slates(table: pd.DataFrame, n_candidates: int | None = None) -> tuple[Slates, dict[str, list[str]]]:
    """Convert a validated long table into padded arrays (requests ordered by ``ts``, then id).

    Returns the slates and the column names of each feature/feedback block.
    """
    cols = list(table.columns)
    item_cols, ctx_cols = S.item_columns(cols), S.context_columns(cols)
    fb_cols = S.feedback_columns(cols)
    page_cols = [c for c in S.REQUEST_LEVEL_COLUMNS if c in cols]
    df = table.copy()
    if S.UPSTREAM_RANK not in cols:  # derive the rank from the score
        df[S.UPSTREAM_RANK] = df.groupby(S.REQUEST_ID)[S.UPSTREAM_SCORE].rank(ascending=False, method="first")
    if S.UPSTREAM_SCORE not in cols:  # a monotone stand-in for a missing score
        df[S.UPSTREAM_SCORE] = S.stand_in_upstream_score(df[S.UPSTREAM_RANK].to_numpy(dtype=float))
    df["_item"] = df[S.ITEM_ID].astype(str)
    df["_rid"] = df[S.REQUEST_ID].astype(str)
    df = df.sort_values([S.TS, "_rid", S.UPSTREAM_RANK, "_item"], kind="stable")

    rid = df["_rid"].to_numpy()
    starts = np.flatnonzero(np.r_[True, rid[1:] != rid[:-1]])
    sizes = np.diff(np.r_[starts, len(df)])
    R = len(starts)
    N = int(sizes.max()) if n_candidates is None else n_candidates
    if sizes.max() > N:
        raise ValueError(f"a request has {sizes.max()} candidates, more than the maximum {N}")
    req_index = np.repeat(np.arange(R), sizes)
    cand_index = np.arange(len(df)) - np.repeat(starts, sizes)

    def padded(values: np.ndarray, fill: float, dtype: type) -> np.ndarray:
        out = np.full((R, N, *values.shape[1:]), fill, dtype=dtype)
        out[req_index, cand_index] = values
        return out

    pos = df[S.LOGGED_POSITION].astype("Float64").fillna(0).to_numpy(dtype=np.int64)
    K = int(pos.max()) if len(pos) else 0
    logged_page = np.full((R, max(K, 1)), S.PAD_INDEX, dtype=np.int64)
    shown = pos > 0
    logged_page[req_index[shown], pos[shown] - 1] = cand_index[shown]

    feedback = df[fb_cols].astype("Float64").fillna(0).to_numpy(dtype=np.float32) if fb_cols else np.zeros((len(df), 0))
    item_ids = df["_item"].to_numpy().astype(str)  # fixed-width unicode, wide enough for every id
    page_fb = df[page_cols].astype("Float64").to_numpy(dtype=np.float32, na_value=np.nan)
    slates = Slates(
        request_id=rid[starts].astype(str),
        ts=pd.to_numeric(df[S.TS]).to_numpy()[starts].astype(np.int64),
        item_id=padded(item_ids, "", item_ids.dtype),  # type: ignore[arg-type]
        item_features=padded(df[item_cols].to_numpy(dtype=np.float32), 0.0, np.float32),
        context=df[ctx_cols].to_numpy(dtype=np.float32)[starts],
        upstream_score=padded(df[S.UPSTREAM_SCORE].to_numpy(dtype=np.float32), 0.0, np.float32),
        upstream_rank=padded(df[S.UPSTREAM_RANK].to_numpy(dtype=np.float32), 0.0, np.float32),
        pad_mask=padded(np.zeros(len(df), dtype=bool), True, np.bool_),
        logged_page=logged_page,
        feedback=padded(feedback.astype(np.float32), 0.0, np.float32),
        page_feedback=page_fb[starts],
    )
    names = {"item_features": item_cols, "context_features": ctx_cols, "feedback": fb_cols, "page_feedback": page_cols}
    return slates, names


def split_bounds(n_requests: int, n_val: int, n_test: int) -> dict[str, slice]:
    """Time-ordered splits: the latest ``n_test`` requests are test, the ``n_val`` before them
    validation, the rest training."""
    n_train = n_requests - n_val - n_test
    if min(n_train, n_val, n_test) < 1:
        raise ValueError(
            f"{n_requests} requests cannot be split into train/val/test = {n_train}/{n_val}/{n_test}; "
            "each split needs at least one request"
        )
    return {
        "train": slice(0, n_train),
        "val": slice(n_train, n_train + n_val),
        "test": slice(n_train + n_val, n_requests),
    }
