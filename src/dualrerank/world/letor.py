"""A world built from LETOR data (MSLR, Yahoo LTR, Istella): the graded labels drive the world's click model.

LETOR files have graded labels but no logged pages, so there is nothing to learn from and no way to score a
new page. The adapter turns each query into a request whose candidates are the top ``N`` documents by a
baseline feature (the "upstream ranker"), and maps each document's grade ``g`` to the latents of the world's
response model (``world/utility.py``): click logit ``logit(click[g])``, completion ``satisfaction[g]``, mean
dwell ``watch_seconds[g]`` and "on intent" for ``g >= relevant_grade``. Everything downstream is the
simulated world's machinery unchanged: Plackett-Luce logging on the upstream score, sampled feedback, exact
expected page utility and the oracle. docs/click-model.md has the formulas.

Documents carry no topic, author or category, so the redundancy and context dependencies are off; the one
page-level effect is intent coverage (a single intent served by the relevant documents of the viewport).
Notation: ``R`` requests, ``N`` candidates, ``F`` features, ``S`` sessions per query.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dualrerank.config.base import replace
from dualrerank.config.svmlight import SvmlightConfig
from dualrerank.config.world import WorldConfig
from dualrerank.data.svmlight import LetorFile, SvmlightError, read_svmlight
from dualrerank.world.requests import RequestSet
from dualrerank.world.simulator import World
from dualrerank.world.utility import UtilityModel

SECONDS_BETWEEN_REQUESTS = 60  # the stream's clock: one request a minute, in stream order
CONTEXT_NAMES = ["ctx_log_n_documents"]  # the only query-level fact LETOR files give


@dataclass(frozen=True)
class Query:
    """One query's candidates: ``rows [N]`` of ``file`` in upstream order, and how many documents it had."""

    file: LetorFile
    rows: np.ndarray
    n_documents: int


@dataclass(frozen=True)
class LetorWorld:
    world: World
    grade: np.ndarray  # [R, N] graded label per candidate: ground truth, for evaluation only
    item_names: list[str]
    context_names: list[str]
    n_dropped: dict[str, int]  # per split: queries with fewer than N documents


def transform_features(x: np.ndarray, log: bool) -> np.ndarray:
    """``[..., F]`` raw features -> float32, optionally ``sign(x) log(1 + |x|)``: a fixed map (nothing is
    fitted), so it cannot leak test statistics; the models' normalisation is then fitted on train only."""
    return (np.sign(x) * np.log1p(np.abs(x)) if log else x).astype(np.float32)


def candidates(f: LetorFile, block: slice, cfg: SvmlightConfig) -> Query | None:
    """The top ``N`` documents of a query by the baseline feature (ties: file order), None if it has fewer."""
    n_docs = block.stop - block.start
    if n_docs < cfg.n_candidates:
        return None
    baseline = f.features[block, cfg.baseline_feature - 1]
    order = np.argsort(-baseline, kind="stable")[: cfg.n_candidates]
    return Query(f, block.start + order, n_docs)


def upstream_scores(f: LetorFile, rows: np.ndarray, cfg: SvmlightConfig) -> np.ndarray:
    """``[N]`` the baseline feature standardised within the query, so the logging temperature means the same
    for every query whatever the feature's scale."""
    b = transform_features(f.features[rows, cfg.baseline_feature - 1], cfg.log_features).astype(np.float64)
    return (b - b.mean()) / b.std() if b.std() > 0 else np.zeros_like(b)


def split_queries(
    files: dict[str, LetorFile], cfg: SvmlightConfig, val_fraction: float, test_fraction: float
) -> tuple[dict[str, list[Query]], dict[str, int]]:
    """Queries per split in stream order: train, then val, then test (file order within each)."""
    kept: dict[str, list[Query]] = {}
    dropped: dict[str, int] = {}
    for name, f in files.items():
        found = [candidates(f, b, cfg) for b in f.query_blocks()]
        kept[name] = [q for q in found if q is not None]
        dropped[name] = len(found) - len(kept[name])
    train = kept.pop("train")
    n = len(train)
    if "test" not in kept:
        n_test = max(1, round(n * test_fraction))
        train, kept["test"] = train[: n - n_test], train[n - n_test :]
    if "val" not in kept:
        n_val = max(1, round(n * val_fraction))
        train, kept["val"] = train[: len(train) - n_val], train[len(train) - n_val :]
    out = {"train": train, "val": kept["val"], "test": kept["test"]}
    for name, qs in out.items():
        if not qs:
            raise SvmlightError(
                f"no {name} query has {cfg.n_candidates} or more documents (data.svmlight.n_candidates); "
                f"dropped per file: {dropped}"
            )
    return out, dropped


def grade_latents(grade: np.ndarray, cfg: SvmlightConfig) -> dict[str, np.ndarray]:
    """The response-model latents of candidates with labels ``grade [R, N]`` (docs/click-model.md).

    Relevant documents share topic 0, the query's one intent (that is how intent coverage finds them); every
    other document gets its own topic and every document its own author. The files say nothing about which
    documents are alike, so ``letor_world`` switches redundancy and context off.
    """
    R, N = grade.shape
    click = np.asarray(cfg.click)[grade]
    on_intent = grade >= cfg.relevant_grade
    own = np.broadcast_to(np.arange(1, N + 1), (R, N))
    topic = np.where(on_intent, 0, own).astype(np.int64)
    return {
        "base_logit": np.log(click / (1.0 - click)),
        "completion": np.asarray(cfg.satisfaction)[grade],
        "mean_watch": np.asarray(cfg.watch_seconds)[grade],
        "on_intent": on_intent.astype(np.float64),
        "topic": topic,
        "author": (own - 1).astype(np.int64),
        "category": topic.copy(),
        "intent_topic": np.zeros((R, 1), dtype=np.int64),
        "intent_weight": np.ones((R, 1)),
    }


def letor_world(
    files: dict[str, LetorFile], cfg: SvmlightConfig, base: WorldConfig, val_fraction: float, test_fraction: float
) -> LetorWorld:
    """Build the world of ``files`` (keys ``train`` and optionally ``val``, ``test``); layout, utility
    constants, logging temperature and seed come from ``base`` (the ``world`` section)."""
    n_features = max(f.features.shape[1] for f in files.values())
    if cfg.baseline_feature > n_features:
        raise SvmlightError(f"data.svmlight.baseline_feature {cfg.baseline_feature} exceeds the {n_features} features")
    for f in files.values():
        bad = np.flatnonzero(f.label >= cfg.n_grades)
        if len(bad):
            raise SvmlightError(
                f"{f.path}:{f.line[bad[0]]}: grade {f.label[bad[0]]}, but data.svmlight.click has "
                f"{cfg.n_grades} grades (0..{cfg.n_grades - 1})"
            )
    splits, dropped = split_queries(files, cfg, val_fraction, test_fraction)
    sessions = {"train": cfg.sessions_per_query, "val": cfg.sessions_per_query, "test": 1}
    stream = [(q, s) for name, qs in splits.items() for s in range(sessions[name]) for q in qs]
    offsets = _document_offsets(files)
    R, N = len(stream), cfg.n_candidates

    def per_query(fn: Callable[[Query], np.ndarray]) -> np.ndarray:
        return np.stack([fn(q) for q, _ in stream])

    grade = per_query(lambda q: q.file.label[q.rows])
    feats = per_query(lambda q: np.pad(q.file.features[q.rows], ((0, 0), (0, n_features - q.file.features.shape[1]))))
    counts = {name: len(qs) * sessions[name] for name, qs in splits.items()}
    wcfg = replace(
        base,
        "world (LETOR)",
        n_candidates=N,
        n_train_requests=counts["train"],
        n_val_requests=counts["val"],
        n_test_requests=counts["test"],
        n_topics=N + 1,
        n_categories=N + 1,
        n_authors=N,
        n_items=sum(len(f.qid) for f in files.values()),
        n_users=cfg.sessions_per_query,
        n_queries=sum(len(qs) for qs in splits.values()),
        redundancy=0.0,
        context=0.0,
        intent_coverage=cfg.intent_coverage,
        drift=0.0,
    )
    requests = RequestSet(
        request_id=np.arange(R, dtype=np.int64),
        ts=SECONDS_BETWEEN_REQUESTS * np.arange(R, dtype=np.int64),
        user=np.array([s for _, s in stream], dtype=np.int64),
        query=np.array([q.file.qid[q.rows[0]] for q, _ in stream], dtype=np.int64),
        item_id=per_query(lambda q: offsets[q.file.path] + q.rows),
        watch_scale=np.ones(R),
        upstream_score=per_query(lambda q: upstream_scores(q.file, q.rows, cfg)),
        item_features=transform_features(feats, cfg.log_features),
        context_features=per_query(lambda q: np.log([q.n_documents])).astype(np.float32),
        **grade_latents(grade, cfg),
    )
    world = World(wcfg, UtilityModel(wcfg, np.zeros((N + 1, N + 1))), requests)
    item_names = [f"feat_{j}" for j in range(1, n_features + 1)]
    return LetorWorld(world, grade, item_names, list(CONTEXT_NAMES), dropped)


def _document_offsets(files: dict[str, LetorFile]) -> dict[Path, int]:
    """Global document ids: the row number over the distinct files, in order (a file used twice counts once)."""
    offsets: dict[Path, int] = {}
    total = 0
    for f in files.values():
        if f.path not in offsets:
            offsets[f.path] = total
            total += len(f.qid)
    return offsets


def load_letor(
    folder: Path, cfg: SvmlightConfig, base: WorldConfig, val_fraction: float, test_fraction: float
) -> LetorWorld:
    """Read ``cfg``'s files under ``folder`` and build their world."""
    names = {"train": cfg.train_file, "val": cfg.val_file, "test": cfg.test_file}
    files = {}
    for split, name in names.items():
        if name is None:
            continue
        path = folder / name
        if not path.is_file():
            raise FileNotFoundError(f"data.svmlight.{split}_file: {path} does not exist")
        files[split] = read_svmlight(path)
    return letor_world(files, cfg, base, val_fraction, test_fraction)
