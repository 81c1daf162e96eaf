"""What the live loop reports from the world's truth: the expected utility of the pages each arm served, its gain
over control, and each served version's offline headroom on the test split. Report only: nothing here feeds
a decision of the loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dualrerank import metrics
from dualrerank.config import Params
from dualrerank.data import schema as S
from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.evaluation.policies import run_policy, score_and_sort
from dualrerank.live import learn
from dualrerank.live.logstore import ARM, MODEL_VERSION
from dualrerank.live.stream import LiveWorld
from dualrerank.models.io import load_as
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.paths import Paths
from dualrerank.world.requests import RequestSet

CONTROL_CHECK = 100  # control's own requests whose page is also reproduced in process: checks the reproduction


class Truth:
    def __init__(self, params: Params, paths: Paths, world: LiveWorld, meta: SlateMeta) -> None:
        self.params, self.cfg, self.paths, self.world, self.meta = params, params.live, paths, world, meta
        self._offline: dict[tuple[str, bool], float] = {}
        self._test_cache: dict[str, Any] | None = None

    def rows(
        self, r: int, requests: RequestSet, table: pd.DataFrame, arms: dict[str, dict], failed: dict[str, int]
    ) -> list[dict[str, Any]]:
        """One row per arm of round ``r``'s logged ``table``: the world's expected utility of the pages it served,
        its logged reward, and its gain over control with the covariate "what control's version serves on the same
        request" (reproduced in process, its draws keyed by the request as in the service). On control's own requests
        that is the page served; it is reproduced on the first ``CONTROL_CHECK`` of them all the same, and
        ``same_page_as_control`` says how often the pages agree. ``arms``: each arm's serving version; ``failed``:
        failed attempts per arm."""
        K = self.meta.page_len
        slates = learn.logs_to_slates(table, self.meta)
        ids = slates.request_id.astype(np.int64)
        world = self.world.at(r, requests.subset(ids - int(requests.request_id[0])))
        served = served_pages(table, ids, world.requests.item_id, K)
        u = world.utility(world.requests, served)
        arm_of = table.groupby(S.REQUEST_ID)[ARM].first()
        arm_of.index = arm_of.index.astype(np.int64)
        arm_of = arm_of.reindex(ids).to_numpy()
        redo = reproduced_requests(arm_of == "control", CONTROL_CHECK)
        control = arms["control"]
        counterfactual = served.copy()
        counterfactual[redo] = learn.best_of_n_pages(
            Path(control["generator"]), Path(control["judge"]), slate_tensors(slates.subset(redo)), ids[redo],
            self.cfg.n_samples, self.params,
        ).numpy()  # fmt: skip
        c = world.utility(world.requests, counterfactual)
        same = np.full(len(ids), np.nan)
        same[redo] = (served[redo] == counterfactual[redo]).all(axis=1)
        weights = {**self.params.data.reward.item, **self.params.data.reward.page}
        rows: dict[str, dict[str, Any]] = {}
        for arm in (a for a in self.cfg.arms if (arm_of == a).any()):
            part = table[table[ARM] == arm]
            mean, half = metrics.mean_ci95(u[arm_of == arm])
            rows[arm] = {
                "round": r,
                "arm": arm,
                "requests": int((arm_of == arm).sum()),
                "impressions_logged": int(part[S.LOGGED_POSITION].notna().sum()),
                "failed_requests": int(failed.get(arm, 0)),
                "served_true_utility": mean,
                "served_true_utility_ci95": half,
                "same_page_as_control": float(np.nanmean(same[arm_of == arm])),
                "logged_reward": logged_reward(part, weights),
                "version": arms[arm]["version"],
                "model_version": str(part[MODEL_VERSION].mode().iloc[0]),
                "drifted": self.world.drifted(r),
                "offline_headroom_captured": self.offline_headroom(r, arms[arm]),
            }
        ctl = arm_of == "control"
        for name, row in rows.items():
            mine = arm_of == name
            if name == "control" or ctl.sum() < 2 or mine.sum() < 2:  # no comparison without both sides
                gain, half = (0.0, 0.0) if name == "control" else (float("nan"), float("nan"))
            else:
                gain, half = adjusted_gain(u[mine], c[mine], u[ctl], c[ctl])
            row |= {"served_gain_vs_control": gain, "served_gain_vs_control_ci95": half}
        return list(rows.values())

    def offline_headroom(self, r: int, s: dict[str, Any]) -> float:
        """A served version ``s`` (Best-of-``n_samples``) on the test split, as headroom captured over
        score-and-sort against the oracle, in the world as it is in round ``r``; once per version and world."""
        key = (s["version"], self.world.drifted(r))
        if key not in self._offline:
            test = self._test()
            pages = learn.best_of_n_pages(
                Path(s["generator"]), Path(s["judge"]), test["tensors"], test["ids"], self.cfg.n_samples, self.params
            )
            world = self.world.at(r, test["requests"])
            u = world.utility(world.requests, pages.numpy()).mean()
            base = world.utility(world.requests, test["baseline"]).mean()
            self._offline[key] = metrics.headroom_captured(u, base, self._oracle(r, test["requests"]))
        return self._offline[key]

    def _test(self) -> dict[str, Any]:
        if self._test_cache is None:
            test = Slates.load(self.paths.split("test"))
            test = test.subset(slice(0, self.cfg.offline_requests))
            tensors = slate_tensors(test)
            pointwise, _ = load_as(self.paths.model("pointwise"), PointwiseScorer)
            baseline = run_policy(score_and_sort(pointwise, self.meta.page_len), tensors).numpy()
            ids = test.request_id.astype(np.int64)
            requests = self.world.base.split_of(ids)
            self._test_cache = {"tensors": tensors, "ids": ids, "requests": requests, "baseline": baseline}
        return self._test_cache

    def _oracle(self, r: int, requests: RequestSet) -> float:
        """The oracle's mean utility on the test requests: ``generate``'s before the drift, the drifted world's
        after it (``drifted_oracle`` computes that once, before the first round)."""
        ids = requests.request_id.astype(str)
        path = self.drifted_oracle_file if self.world.drifted(r) else self.paths.oracle
        with np.load(path) as z:
            found = dict(zip(z["request_id"].astype(str), z["utility"], strict=True))
        return float(np.mean([found[i] for i in ids]))

    @property
    def drifted_oracle_file(self) -> Path:
        return self.paths.live / "oracle_drifted.npz"

    def drifted_oracle(self) -> None:
        """The oracle of the drifted world on the offline test requests (report only), once per loop."""
        if self.cfg.drift.round is None or self.drifted_oracle_file.exists():
            return
        requests = self._test()["requests"]
        print(f"live: the oracle of the drifted world on {len(requests)} test requests (once)", flush=True)
        world = self.world.at(self.cfg.drift.round, requests)
        best = world.oracle(world.requests, workers=max(os.cpu_count() or 1, 1))
        self.drifted_oracle_file.parent.mkdir(parents=True, exist_ok=True)
        np.savez(self.drifted_oracle_file, request_id=requests.request_id.astype(str), utility=best.utility)


def reproduced_requests(is_control: np.ndarray, check: int) -> np.ndarray:
    """Indices of the requests whose control page the report reproduces: every other arm's, and the first
    ``check`` of control's own (the rest of control's are the pages it served)."""
    return np.flatnonzero(~is_control | (np.cumsum(is_control) <= check))


def served_pages(table: pd.DataFrame, ids: np.ndarray, item_ids: np.ndarray, K: int) -> np.ndarray:
    """``[R, K]`` candidate indices of the pages logged for requests ``ids`` (rows of ``item_ids [R, N]``)."""
    shown = table[table[S.LOGGED_POSITION].notna()]
    where = {int(i): row for row, i in enumerate(ids)}
    row = np.array([where[int(i)] for i in shown[S.REQUEST_ID]], dtype=np.int64)
    pages = np.full((len(ids), K), -1, dtype=np.int64)
    lookup = [{str(item): j for j, item in enumerate(items)} for items in item_ids]
    cand = np.array([lookup[i][str(item)] for i, item in zip(row, shown[S.ITEM_ID], strict=True)], dtype=np.int64)
    pages[row, shown[S.LOGGED_POSITION].astype(np.int64).to_numpy() - 1] = cand
    return pages


def logged_reward(table: pd.DataFrame, weights: dict[str, float]) -> float:
    """Mean business reward per request on the logged feedback (item columns summed over the page)."""
    per_request = table.groupby(S.REQUEST_ID)
    total = np.zeros(per_request.ngroups)
    for column, w in weights.items():
        if column in table.columns and w != 0:
            values = per_request[column].sum() if column not in S.REQUEST_LEVEL_COLUMNS else per_request[column].first()
            total += w * values.astype(float).to_numpy()
    return float(total.mean())


def adjusted_gain(u: np.ndarray, c: np.ndarray, u_ctl: np.ndarray, c_ctl: np.ndarray) -> tuple[float, float]:
    """An arm's mean gain over control and its 95% half-width, with the covariate ``c`` (a per-request quantity
    that does not depend on the arm) regressed out (CUPED): ``u - θ(c - mean c)``, ``θ = cov(u, c) / var(c)`` pooled
    over both arms. Unbiased like the plain difference of means, with the between-request variance removed."""
    u_all, c_all = np.concatenate([u, u_ctl]), np.concatenate([c, c_ctl])
    theta = np.cov(u_all, c_all)[0, 1] / c_all.var(ddof=1) if c_all.var() > 0 else 0.0
    a, b = u - theta * (c - c_all.mean()), u_ctl - theta * (c_ctl - c_all.mean())
    half = 1.96 * np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    return float(a.mean() - b.mean()), float(half)
