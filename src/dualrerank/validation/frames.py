"""The derived frames the suite validates besides the rows: columns, feedback and requests.

GX checks one row at a time (or one column); rules about a whole request (how many candidates, is a
context column constant) are computed here in pandas, one row per request, and then asserted with
ordinary GX expectations on that frame. Every function here is cheap next to the row checks: a few
group-by passes over the needed columns, never a copy of the whole table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from dualrerank.data import schema as S

N_CANDIDATES = "n_candidates"
DISTINCT_PREFIX = "n_distinct__"
UPSTREAM_COLUMNS = (S.UPSTREAM_SCORE, S.UPSTREAM_RANK)

# what ``column_groups`` calls each family of columns
GROUP_FEATURES = "feat_*"
GROUP_UPSTREAM = "upstream_score|upstream_rank"
GROUP_FEEDBACK = "click|watch_time|label_*"


def column_group(name: str) -> str:
    """The family a column belongs to, for the "at least one of" column rules."""
    if name.startswith(S.ITEM_PREFIX):
        return GROUP_FEATURES
    if name in UPSTREAM_COLUMNS:
        return GROUP_UPSTREAM
    if name in S.ITEM_FEEDBACK_COLUMNS or name.startswith(S.LABEL_PREFIX):
        return GROUP_FEEDBACK
    if name.startswith(S.CONTEXT_PREFIX):
        return "ctx_*"
    return name


def columns_frame(table: pd.DataFrame) -> pd.DataFrame:
    """One row per column of ``table``: its name and family (``feat_*``, ``upstream_score|upstream_rank``...)."""
    names = [str(c) for c in table.columns]
    return pd.DataFrame({"column": names, "group": [column_group(c) for c in names]})


def request_level_columns(columns: list[str]) -> list[str]:
    """Columns that must hold one value per request: ``ts``, ``ctx_*``, ``satisfaction``, ``reformulated``."""
    optional = [c for c in S.REQUEST_LEVEL_COLUMNS if c in columns]
    return [S.TS, *S.context_columns(columns), *optional]


def candidate_counts(table: pd.DataFrame) -> pd.Series:
    """Per row: how many candidates its request has (NA where ``request_id`` is null)."""
    codes, uniques = pd.factorize(table[S.REQUEST_ID], use_na_sentinel=True)
    sizes = np.bincount(codes[codes >= 0], minlength=len(uniques))
    counts = pd.array(sizes[codes], dtype="Int64")
    counts[codes < 0] = pd.NA
    return pd.Series(counts, index=table.index, name=N_CANDIDATES)


def feedback_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The columns the feedback and position-range rules need, plus each row's candidate count.

    A narrow frame keeps GX's row-condition filtering (``DataFrame.query``) from copying all ~55
    columns once per feedback expectation.
    """
    cols = [S.REQUEST_ID, S.LOGGED_POSITION, *S.feedback_columns(list(table.columns))]
    return table[cols].assign(**{N_CANDIDATES: candidate_counts(table)})


def requests_frame(table: pd.DataFrame) -> pd.DataFrame:
    """One row per request: ``request_id``, ``n_candidates`` and ``n_distinct__<col>`` for each
    request-level column.

    Nulls in ``ts``/``ctx_*`` are not counted (the not-null rule reports them already, once); nulls in
    the optional ``satisfaction``/``reformulated`` are, so ``[1, null]`` within a request is two values.
    """
    cols = request_level_columns(list(table.columns))
    optional = [c for c in S.REQUEST_LEVEL_COLUMNS if c in cols]
    required = [c for c in cols if c not in optional]
    groups = table[[S.REQUEST_ID, *cols]].groupby(S.REQUEST_ID, sort=False, dropna=True)
    parts = [groups[required].nunique(dropna=True), groups[optional].nunique(dropna=False)]
    distinct = pd.concat(parts, axis=1)[cols].add_prefix(DISTINCT_PREFIX)
    out = pd.concat([groups.size().rename(N_CANDIDATES), distinct], axis=1)
    return out.rename_axis(S.REQUEST_ID).reset_index()
