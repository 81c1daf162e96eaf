"""Slates as torch tensors, and a dataset over them (the Lightning DataModule is ``training.trainer``'s)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from dualrerank.data.slates import Slates

INPUT_FIELDS = ("item_features", "context", "upstream_score", "upstream_rank", "pad_mask")


def slate_tensors(slates: Slates, extra: dict[str, np.ndarray] | None = None) -> dict[str, Tensor]:
    """Model inputs + logged page and feedback (+ ``extra`` per-request arrays) as tensors."""
    names = (*INPUT_FIELDS, "logged_page", "feedback", "page_feedback")
    out = {name: torch.from_numpy(np.ascontiguousarray(getattr(slates, name))) for name in names}
    for name, arr in (extra or {}).items():
        if len(arr) != len(slates):
            raise ValueError(f"extra tensor {name!r} has {len(arr)} rows, slates have {len(slates)}")
        out[name] = torch.from_numpy(np.ascontiguousarray(arr))
    return out


def grouped_tensors(
    slates: Slates, pages: np.ndarray, slot_feedback: np.ndarray, page_outcomes: np.ndarray
) -> dict[str, Tensor]:
    """Model inputs of ``slates`` with several logged pages per request: ``pages [R, G, K]`` (candidate indices,
    PAD_INDEX on empty slots), their feedback by slot ``[R, G, K, L]`` and per page ``[R, G, P]``."""
    R = len(slates)
    for name, arr in (("pages", pages), ("slot_feedback", slot_feedback), ("page_outcomes", page_outcomes)):
        if arr.shape[0] != R:
            raise ValueError(f"{name} has {arr.shape[0]} rows, slates have {R}")
    out = {name: torch.from_numpy(np.ascontiguousarray(getattr(slates, name))) for name in INPUT_FIELDS}
    out["pages"] = torch.from_numpy(np.ascontiguousarray(pages, dtype=np.int64))
    out["slot_feedback"] = torch.from_numpy(np.ascontiguousarray(slot_feedback, dtype=np.float32))
    out["page_outcomes"] = torch.from_numpy(np.ascontiguousarray(page_outcomes, dtype=np.float32))
    return out


class TensorDictDataset(Dataset):
    """Rows of a dict of equally long tensors; default collation stacks them back into a dict."""

    def __init__(self, tensors: dict[str, Tensor]) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors have different lengths: {lengths}")
        self.tensors = tensors
        self.length = lengths.pop()

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.tensors.items()}
