"""Turn the world's stream into the long-format log table of the data contract."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dualrerank.data import schema as S
from dualrerank.world.requests import RequestSet, context_feature_names, item_feature_names
from dualrerank.world.simulator import World

LONG_VIEW = f"{S.LABEL_PREFIX}long_view"  # watched to the end; an extra per-item feedback column
# logged feedback column -> the key of the same response in ``World.expected`` (its exact expectation)
WORLD_RESPONSES = {
    S.CLICK: "click",
    S.WATCH_TIME: "watch",
    LONG_VIEW: "long_view",
    S.SATISFACTION: "satisfaction",
    S.REFORMULATED: "reformulated",
}


def log_table(
    world: World, seed: int, item_names: list[str] | None = None, context_names: list[str] | None = None
) -> pd.DataFrame:
    """One row per (request, candidate): features, upstream score/rank, the logging policy's page and
    its sampled feedback (null on rows that were not shown).

    Feature columns are named after the simulated world's features unless ``item_names`` /
    ``context_names`` are given (a world built from other data, e.g. ``world/letor.py``)."""
    pages, resp = world.log(world.requests, seed)
    item_names = item_feature_names(world.cfg) if item_names is None else item_names
    context_names = context_feature_names(world.cfg) if context_names is None else context_names
    return impressions_table(world.requests, pages, resp, item_names, context_names)


def impressions_table(
    req: RequestSet, pages: np.ndarray, resp: dict[str, np.ndarray], item_names: list[str], context_names: list[str]
) -> pd.DataFrame:
    """The long table of the data contract for requests ``req`` shown ``pages [R, K]`` (candidate indices) with
    the sampled feedback ``resp`` (``sample_responses``' keys); the logs of ``generate`` and of the live loop."""
    R, N = req.item_id.shape
    K = pages.shape[1]

    logged_position = np.zeros((R, N), dtype=np.int64)  # 0 = not shown
    np.put_along_axis(logged_position, pages, np.arange(1, K + 1)[None].repeat(R, 0), axis=1)
    shown = logged_position > 0
    click = np.zeros((R, N))
    watch = np.zeros((R, N))
    np.put_along_axis(click, pages, resp["click"], axis=1)
    np.put_along_axis(watch, pages, np.round(resp["watch"], 2), axis=1)
    long_view = np.zeros((R, N))
    np.put_along_axis(long_view, pages, resp["long_view"], axis=1)

    columns: dict[str, object] = {
        S.REQUEST_ID: np.repeat(req.request_id, N),
        S.TS: np.repeat(req.ts, N),
        S.ITEM_ID: req.item_id.reshape(-1),
    }
    ctx = np.repeat(req.context_features, N, axis=0)
    for j, name in enumerate(context_names):
        columns[name] = ctx[:, j]
    feats = req.item_features.reshape(R * N, -1)
    for j, name in enumerate(item_names):
        columns[name] = feats[:, j]
    columns[S.UPSTREAM_SCORE] = req.upstream_score.reshape(-1).astype(np.float32)
    columns[S.UPSTREAM_RANK] = np.tile(np.arange(1, N + 1), R)
    flat_shown = shown.reshape(-1)
    columns[S.LOGGED_POSITION] = pd.array(np.where(flat_shown, logged_position.reshape(-1), 0), dtype="Int64")
    columns[S.CLICK] = pd.array(click.reshape(-1).astype(np.int64), dtype="Int64")
    columns[S.WATCH_TIME] = watch.reshape(-1)
    columns[LONG_VIEW] = pd.array(long_view.reshape(-1).astype(np.int64), dtype="Int64")
    columns[S.SATISFACTION] = np.repeat(resp["satisfaction"], N).astype(np.int64)
    columns[S.REFORMULATED] = np.repeat(resp["reformulated"], N).astype(np.int64)
    table = pd.DataFrame(columns)
    not_shown = ~flat_shown
    table.loc[not_shown, S.LOGGED_POSITION] = pd.NA
    table.loc[not_shown, S.CLICK] = pd.NA
    table.loc[not_shown, S.WATCH_TIME] = np.nan
    table.loc[not_shown, LONG_VIEW] = pd.NA
    return table
