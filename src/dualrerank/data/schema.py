"""The input data contract (long format, one row per (request, candidate)) and shared constants.

Shape letters used in every docstring and comment of the project:

* ``B`` batch of requests, ``N`` candidates per request (padded), ``K`` page length (slots generated),
* ``V`` viewport slots (4: the first two rows of a dual-column feed), ``G`` sampled lists per request,
* ``D`` model width, ``F`` item-feature width, ``Fc`` context-feature width, ``R`` reward components.

Padding: ``pad_mask`` is True on padded candidates (PyTorch ``key_padding_mask`` polarity); a page slot
holding no item is ``PAD_INDEX``.
"""

from __future__ import annotations

import numpy as np

PAD_INDEX = -1

REQUEST_ID = "request_id"
TS = "ts"
ITEM_ID = "item_id"
UPSTREAM_SCORE = "upstream_score"
UPSTREAM_RANK = "upstream_rank"
LOGGED_POSITION = "logged_position"
CLICK = "click"
WATCH_TIME = "watch_time"
SATISFACTION = "satisfaction"
REFORMULATED = "reformulated"

CONTEXT_PREFIX = "ctx_"
ITEM_PREFIX = "feat_"
LABEL_PREFIX = "label_"

REQUIRED_COLUMNS = (REQUEST_ID, TS, ITEM_ID, LOGGED_POSITION)  # plus one feedback column at least
REQUEST_LEVEL_COLUMNS = (SATISFACTION, REFORMULATED)  # optional, constant within a request
ITEM_FEEDBACK_COLUMNS = (CLICK, WATCH_TIME)  # plus any label_* column


def context_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if c.startswith(CONTEXT_PREFIX)]


def item_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if c.startswith(ITEM_PREFIX)]


def label_columns(columns: list[str]) -> list[str]:
    return [c for c in columns if c.startswith(LABEL_PREFIX)]


def feedback_columns(columns: list[str]) -> list[str]:
    """Per-item feedback columns present in a table (observed only on shown rows)."""
    return [c for c in ITEM_FEEDBACK_COLUMNS if c in columns] + label_columns(columns)


def stand_in_upstream_score(rank: np.ndarray) -> np.ndarray:
    """A monotone stand-in for a missing upstream score: ``-log(rank)`` (``rank`` 1-based, higher is better).

    One rule for every place that meets data without scores (tables, service requests), so models see
    the same input either way.
    """
    return -np.log(np.asarray(rank, dtype=np.float64))
