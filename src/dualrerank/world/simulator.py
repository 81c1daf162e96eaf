"""``World``: one object holding a generated stream, its utility model, and its time-ordered splits.

The world is used only to generate logs and to score pages for evaluation; no model, reward or
serving code may call it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dualrerank.config.base import build
from dualrerank.config.world import WorldConfig
from dualrerank.world.entities import make_universe
from dualrerank.world.oracle import OracleResult, oracle
from dualrerank.world.policy import plackett_luce_pages
from dualrerank.world.requests import RequestSet, make_requests
from dualrerank.world.responses import sample_responses
from dualrerank.world.utility import UtilityModel, expected_responses, item_values, true_utility

SPLITS = ("train", "val", "test")
DEPENDENCIES = ("redundancy", "context", "intent_coverage")  # the strengths of what a page does to its items


@dataclass(frozen=True)
class World:
    cfg: WorldConfig
    model: UtilityModel
    requests: RequestSet  # the whole stream, time-ordered

    @classmethod
    def generate(cls, cfg: WorldConfig) -> World:
        rng = np.random.default_rng(cfg.seed)
        universe = make_universe(cfg, rng)
        requests = make_requests(cfg, universe, rng)
        return cls(cfg, UtilityModel(cfg, universe.transition), requests)

    # --- splits -------------------------------------------------------------------------------
    def split_slice(self, split: str) -> slice:
        """Time-ordered split: train first, then val, test = the latest requests."""
        c = self.cfg
        bounds = {
            "train": (0, c.n_train_requests),
            "val": (c.n_train_requests, c.n_train_requests + c.n_val_requests),
            "test": (c.n_train_requests + c.n_val_requests, c.n_requests),
        }
        if split not in bounds:
            raise KeyError(f"unknown split {split!r}; expected one of {SPLITS}")
        return slice(*bounds[split])

    def split(self, split: str) -> RequestSet:
        return self.requests.subset(self.split_slice(split))

    def split_of(self, request_ids: np.ndarray) -> RequestSet:
        """Requests by id (ids are stream positions)."""
        return self.requests.subset(np.asarray(request_ids, dtype=np.int64))

    # --- the world's functions ---------------------------------------------------------------
    def log(self, req: RequestSet, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Logging policy pages ``[R, K]`` and one draw of their feedback."""
        rng = np.random.default_rng(seed)
        pages = plackett_luce_pages(req.upstream_score, self.cfg.page_len, self.cfg.logging_temperature, rng)
        return pages, sample_responses(self.model, req, pages, rng)

    def utility(self, req: RequestSet, pages: np.ndarray) -> np.ndarray:
        """[R] exact expected utility of one page per request."""
        return true_utility(self.model, req, pages)

    def expected(self, req: RequestSet, pages: np.ndarray) -> dict[str, np.ndarray]:
        return expected_responses(self.model, req, pages)

    def item_values(self, req: RequestSet) -> np.ndarray:
        return item_values(self.model, req)

    def without(self, *dependencies: str) -> World:
        """The same world and requests with the named dependency strengths (``DEPENDENCIES``) at 0. What a page's
        utility owes to a dependency is its utility here minus its utility there (diagnostics only)."""
        unknown = set(dependencies) - set(DEPENDENCIES)
        if unknown:
            raise ValueError(f"unknown dependencies {sorted(unknown)}; known: {list(DEPENDENCIES)}")
        cfg = self.cfg.model_copy(update=dict.fromkeys(dependencies, 0.0))
        return World(cfg, UtilityModel(cfg, self.model.transition), self.requests)

    def oracle(self, req: RequestSet, progress: bool = False, workers: int = 1) -> OracleResult:
        return oracle(self.model, req, progress=progress, workers=workers)

    # --- persistence --------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write the world's state (config, transitions, request latents) to one ``.npz`` file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {f"req_{k}": v for k, v in self.requests.arrays().items()}
        with open(path, "wb") as fh:
            arrays["config"] = np.array(json.dumps(self.cfg.model_dump()))
            arrays["transition"] = self.model.transition
            np.savez_compressed(fh, **arrays)  # type: ignore[arg-type]

    @staticmethod
    def load_config(path: Path) -> WorldConfig:
        """The config of a saved world, without loading its requests."""
        with np.load(path, allow_pickle=False) as z:
            return build(WorldConfig, json.loads(str(z["config"])), "world")

    @classmethod
    def load(cls, path: Path) -> World:
        with np.load(path, allow_pickle=False) as z:
            cfg = build(WorldConfig, json.loads(str(z["config"])), "world")
            fields = {k[4:]: z[k] for k in z.files if k.startswith("req_")}
            return cls(cfg, UtilityModel(cfg, z["transition"]), RequestSet(**fields))
