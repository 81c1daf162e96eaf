"""The best page under the true utility: exact enumeration when feasible, else beam search.

Beam search exploits the screen structure of the utility (see ``utility.py``): appending an item only
changes the terms of the current screen, so each expansion re-scores a window of at most ``V + 1``
slots (the screen so far plus the previous item for its context effect) instead of the whole page.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

from dualrerank.world.requests import RequestSet
from dualrerank.world.utility import UtilityModel, page_terms, true_utility


@dataclass(frozen=True)
class OracleResult:
    pages: np.ndarray  # [R, K]
    utility: np.ndarray  # [R]
    method: str  # "exact" or "beam(W)"


def oracle(
    model: UtilityModel, req: RequestSet, chunk: int = 8, progress: bool = False, workers: int = 1
) -> OracleResult:
    """Best page per request; exact if ``N!/(N-K)!`` <= ``oracle_max_enumeration``, else beam search, chunks of
    ``chunk`` requests spread over ``workers`` processes (the same pages for any number of workers)."""
    cfg = model.cfg
    N, K = req.item_id.shape[1], cfg.page_len
    if math.perm(N, K) <= cfg.oracle_max_enumeration:
        return _exact(model, req)
    pages = np.empty((len(req), K), dtype=np.int64)
    starts = list(range(0, len(req), chunk))
    jobs = ((model, req.subset(slice(s, s + chunk)), cfg.oracle_beam) for s in starts)
    with _pool(workers) as pool:
        for i, (s, found) in enumerate(zip(starts, pool.map(_beam_job, jobs))):
            pages[s : s + chunk] = found
            if progress and (i % 25 == 0 or i == len(starts) - 1):
                print(f"  oracle beam search: {min(s + chunk, len(req))}/{len(req)} requests", flush=True)
    return OracleResult(pages, true_utility(model, req, pages), f"beam({cfg.oracle_beam})")


def _beam_job(job: tuple[UtilityModel, RequestSet, int]) -> np.ndarray:
    return beam_search(*job)


@contextmanager
def _pool(workers: int) -> Iterator[Any]:
    """An executor with ``map``: in this process for one worker, else a pool of forked processes."""
    if workers <= 1:
        yield SimpleNamespace(map=map)
        return
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        yield pool


def _exact(model: UtilityModel, req: RequestSet) -> OracleResult:
    N, K = req.item_id.shape[1], model.cfg.page_len
    perms = np.array(list(itertools.permutations(range(N), K)), dtype=np.int64)  # [P, K]
    best_pages = np.empty((len(req), K), dtype=np.int64)
    best_util = np.empty(len(req))
    for r in range(len(req)):
        util = true_utility(model, req, perms, rows=np.full(len(perms), r))
        best = int(np.argmax(util))
        best_pages[r], best_util[r] = perms[best], util[best]
    return OracleResult(best_pages, best_util, "exact")


def beam_search(model: UtilityModel, req: RequestSet, beam: int) -> np.ndarray:
    """[R, K] pages found by beam search of width ``beam`` on the true utility."""
    cfg = model.cfg
    R, N, K, V = len(req), req.item_id.shape[1], cfg.page_len, cfg.viewport
    items = np.empty((R, 1, 0), dtype=np.int64)  # beams: [R, W, t]
    score = np.zeros((R, 1))  # utility of completed screens + current partial screen
    screen_val = np.zeros((R, 1))  # the current partial screen's share of ``score``
    for t in range(K):
        W = items.shape[1]
        s0 = (t // V) * V
        head = items[:, :, s0:t]  # the current screen so far [R, W, t - s0]
        cand = np.broadcast_to(np.arange(N), (R, W, N))
        window = np.concatenate(
            [np.broadcast_to(head[:, :, None, :], (R, W, N, t - s0)), cand[..., None]], axis=-1
        ).reshape(R * W * N, t - s0 + 1)
        prev = (items[:, :, s0 - 1] if s0 > 0 else np.full((R, W), -1))[:, :, None]
        prev = np.broadcast_to(prev, (R, W, N)).reshape(-1)
        rows = np.repeat(np.arange(R), W * N)
        new_val = page_terms(model, req, rows, window, first_slot=s0, prev=prev)["utility"].reshape(R, W, N)
        if t == s0:
            screen_val = np.zeros_like(screen_val)
        total = score[:, :, None] - screen_val[:, :, None] + new_val
        used = np.zeros((R, W, N), dtype=bool)
        if t > 0:
            np.put_along_axis(used, items, True, axis=2)
        total = np.where(used, -np.inf, total).reshape(R, W * N)
        keep = min(beam, W * (N - t))  # each beam has N - t unused items
        top = np.argpartition(-total, keep - 1, axis=1)[:, :keep]
        w_idx, n_idx = top // N, top % N
        items = np.concatenate([np.take_along_axis(items, w_idx[:, :, None], 1), n_idx[:, :, None]], axis=2)
        score = np.take_along_axis(total, top, 1)
        screen_val = np.take_along_axis(new_val.reshape(R, W * N), top, 1)
    best = np.argmax(score, axis=1)
    return items[np.arange(R), best]
