"""The world's users in the live loop: fresh requests that continue the stream, and the world as it drifts.

Each round draws its own requests from the world's population (the same users, queries and catalogue the logs
came from, rebuilt from the world's seed) with timestamps on the day after the stream's previous round, so the
loop never reuses a logged, validation or test request. From ``live.drift.round`` on, the world's users value
pages differently (``LiveDriftConfig``): watch times shrink and a served intent satisfies more often.

Like the rest of the world, this is used to *play* users (draw feedback for served pages) and to *report* (the
expected utility of the pages served, the oracle); no model, reward, gate or promotion reads it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from dualrerank.config.live import LiveDriftConfig
from dualrerank.world.entities import Universe, make_universe
from dualrerank.world.requests import STREAM_SECONDS, RequestSet, make_requests
from dualrerank.world.simulator import World
from dualrerank.world.utility import UtilityModel

DAY = 86400


@dataclass(frozen=True)
class LiveWorld:
    base: World
    universe: Universe
    drift: LiveDriftConfig

    @classmethod
    def from_world(cls, world: World, drift: LiveDriftConfig) -> LiveWorld:
        """The live world of a generated one: its population is rebuilt from its seed (and checked)."""
        universe = make_universe(world.cfg, np.random.default_rng(world.cfg.seed))
        if not np.array_equal(universe.transition, world.model.transition):
            raise ValueError("the saved world does not match its own seed and settings; rerun generate")
        return cls(world, universe, drift)

    def drifted(self, round_: int) -> bool:
        return self.drift.round is not None and round_ >= self.drift.round

    def at(self, round_: int, req: RequestSet) -> World:
        """The world as it is in round ``round_``, over requests ``req`` (their watch times drifted if it is)."""
        cfg, scale = self.base.cfg, np.ones(len(req))
        if self.drifted(round_):
            cfg = cfg.model_copy(update={"sat_prob": self.drift.sat_prob})
            scale = scale * self.drift.watch_scale
        req = dataclasses.replace(req, watch_scale=req.watch_scale * scale)
        return World(cfg, UtilityModel(cfg, self.base.model.transition), req)

    def round_requests(self, round_: int, size: int, seed: int) -> RequestSet:
        """Round ``round_``'s ``size`` fresh requests, time-ordered, on day ``round_`` after the stream's end; ids
        continue the stream's (``World`` request ids are stream positions)."""
        base = self.base.cfg
        cfg = base.model_copy(update={"n_train_requests": size, "n_val_requests": 0, "n_test_requests": 0})
        req = make_requests(cfg, self.universe, np.random.default_rng([base.seed, seed, round_]))
        ts = STREAM_SECONDS + round_ * DAY + req.ts % DAY  # same time of day: the context's hour features hold
        order = np.argsort(ts, kind="stable")
        first = base.n_requests + round_ * size
        return dataclasses.replace(
            req.subset(order),
            request_id=np.arange(first, first + size, dtype=np.int64),
            ts=ts[order],
            watch_scale=np.full(size, 1.0 + base.drift),  # where the stream's own drift ended
        )
