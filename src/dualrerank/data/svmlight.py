"""Read LETOR/SVMlight ranking files: ``label qid:N idx:value ... [# comment]``, one document per line.

This is the format of MSLR-WEB10K, Yahoo! LTR and Istella. A query's rows are contiguous, feature ids are
1-based and increase along a line, and a missing feature is 0 (sparse files). A malformed line is an error
that names the file and the line number: a silently skipped row would change a query's candidate set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np


class SvmlightError(ValueError):
    """A line of an SVMlight file does not fit the format."""


@dataclass(frozen=True)
class LetorFile:
    """The documents of one file, in file order. ``n`` documents, ``F`` = the largest feature id seen."""

    path: Path
    qid: np.ndarray  # [n] int64 query id of each document
    label: np.ndarray  # [n] int64 graded relevance (>= 0)
    features: np.ndarray  # [n, F] float64; feature id j is column j - 1
    line: np.ndarray  # [n] 1-based line number of each document

    def query_blocks(self) -> list[slice]:
        """Row ranges of the queries, in file order (rows of a query are contiguous)."""
        starts = np.flatnonzero(np.r_[True, self.qid[1:] != self.qid[:-1]])
        ends = np.r_[starts[1:], len(self.qid)]
        return [slice(int(s), int(e)) for s, e in zip(starts, ends)]


def parse_line(text: str, where: str) -> tuple[int, int, list[tuple[int, float]]] | None:
    """``(label, qid, [(feature id, value), ...])`` of one line, or None for a blank or comment line.

    ``where`` (``path:line``) prefixes every error message.
    """
    tokens = text.split("#", 1)[0].split()
    if not tokens:
        return None
    label = _number(tokens[0], where, "label")
    if label < 0 or label != int(label):
        raise SvmlightError(f"{where}: the label must be a non-negative integer grade, got {tokens[0]!r}")
    if len(tokens) < 2 or not tokens[1].startswith("qid:"):
        got = tokens[1] if len(tokens) > 1 else "end of line"
        raise SvmlightError(f"{where}: expected 'qid:N' after the label, got {got!r}")
    try:
        qid = int(tokens[1][4:])
    except ValueError:
        raise SvmlightError(f"{where}: the query id must be an integer, got {tokens[1]!r}") from None
    feats: list[tuple[int, float]] = []
    last = 0
    for tok in tokens[2:]:
        idx_text, sep, value_text = tok.partition(":")
        if not sep:
            raise SvmlightError(f"{where}: expected 'id:value', got {tok!r}")
        try:
            idx = int(idx_text)
        except ValueError:
            raise SvmlightError(f"{where}: the feature id must be an integer, got {tok!r}") from None
        if idx < 1:
            raise SvmlightError(f"{where}: feature ids are 1-based, got {tok!r}")
        if idx <= last:
            raise SvmlightError(f"{where}: feature ids must increase along a line ({idx} after {last})")
        feats.append((idx, _number(value_text, where, f"feature {idx}")))
        last = idx
    return int(label), qid, feats


def _number(text: str, where: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SvmlightError(f"{where}: {what} is not a number: {text!r}") from None
    if not math.isfinite(value):
        raise SvmlightError(f"{where}: {what} is not finite: {text!r}")
    return value


def read_svmlight(path: Path) -> LetorFile:
    """Parse a whole file; raises :class:`SvmlightError` (file and line) on the first malformed line."""
    labels: list[int] = []
    qids: list[int] = []
    lines: list[int] = []
    rows: list[int] = []
    cols: list[int] = []
    values: list[float] = []
    seen: set[int] = set()
    with open(path, encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            where = f"{path}:{number}"
            parsed = parse_line(text, where)
            if parsed is None:
                continue
            label, qid, feats = parsed
            if qids and qid != qids[-1]:
                if qid in seen:
                    raise SvmlightError(f"{where}: qid {qid} appears again after other queries (not contiguous)")
                seen.add(qids[-1])
            row = len(labels)
            labels.append(label)
            qids.append(qid)
            lines.append(number)
            rows += [row] * len(feats)
            cols += [idx - 1 for idx, _ in feats]
            values += [v for _, v in feats]
    if not labels:
        raise SvmlightError(f"{path}: no documents (the file is empty or holds only comments)")
    features = np.zeros((len(labels), max(cols, default=-1) + 1))
    features[rows, cols] = values
    return LetorFile(
        path=Path(path),
        qid=np.asarray(qids, dtype=np.int64),
        label=np.asarray(labels, dtype=np.int64),
        features=features,
        line=np.asarray(lines, dtype=np.int64),
    )
