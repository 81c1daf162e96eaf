"""One learning step of the live loop, as small functions: logs to slates, the evaluators' update, an arm's
fine-tuning run, the gate, and the version's registration and packaging.

Every decision here reads what a real deployment has: the logged outcomes of served traffic (through the
evaluators trained on them) and nothing of the world.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from dualrerank import metrics, registry
from dualrerank.config import Params, replace
from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import SlateMeta, Slates, table_to_slates
from dualrerank.evaluation.scoring import batched_scores
from dualrerank.live.arms import unit_hash
from dualrerank.live.logstore import SERVED_COLUMNS
from dualrerank.models.components import SlateInputs
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.io import load_as
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.paths import Paths
from dualrerank.reranking import Judge, Reranker
from dualrerank.serving.store import LIVE_MODEL_NAME, import_reranker
from dualrerank.stages.evaluator_fit import fit_evaluator
from dualrerank.stages.package import model_spec
from dualrerank.training.finetuning import PolicyRun, reward_spec, stream_tensors, train_policy

ROLES = ("evaluator", "evaluator_heldout")


def logs_to_slates(table: pd.DataFrame, meta: SlateMeta) -> Slates:
    """The store's rows (the data contract plus who served them) as slates in time order, checked against the
    feature and feedback columns the models were trained on."""
    extra = [c for c in (*SERVED_COLUMNS, "round") if c in table.columns]
    slates, names = table_to_slates(table.drop(columns=extra))
    expected = {
        "item_features": meta.item_features,
        "context_features": meta.context_features,
        "feedback": meta.feedback,
        "page_feedback": meta.page_feedback,
    }
    for block, columns in expected.items():
        if names[block] != list(columns):
            raise ValueError(f"the live logs' {block} columns {names[block]} differ from the models' {columns}")
    return slates


def main_share(request_ids: np.ndarray, share: float) -> np.ndarray:
    """``[R]`` True on the main evaluator's requests: a stable hash of the id, so a request replayed in a later
    round goes to the same evaluator and the two stay disjoint."""
    return np.array([unit_hash(str(r), "evaluators") < share for r in request_ids], dtype=bool)


def recent_holdout(logs: Slates, n: int) -> tuple[Slates, Slates]:
    """``logs`` (time-ordered) split into what the evaluators' update trains on and its newest ``n`` requests, on
    which it is validated: the world as the loop serves it now, not as the training split saw it."""
    cut = max(len(logs) - n, 0)
    return logs.subset(np.arange(cut)), logs.subset(np.arange(cut, len(logs)))


def update_evaluators(
    params: Params,
    paths: Paths,
    meta: SlateMeta,
    logs: Slates,
    val: Slates,
    warm: dict[str, Path],
    dest: dict[str, Path],
) -> dict[str, float]:
    """Both evaluators continue (warm start) on ``logs``, each on its own requests, at ``live.evaluator_lr`` for at
    most ``live.evaluator_epochs`` epochs; each keeps its epoch of least loss on ``val`` (newer logs neither trains
    on). Written to ``dest``."""
    cfg, live = params.train_evaluator, params.live
    optim = replace(cfg.optim, lr=live.evaluator_lr, max_epochs=live.evaluator_epochs)
    params = params.model_copy(update={"train_evaluator": replace(cfg, optim=optim)})
    val_t = slate_tensors(val)
    main = main_share(logs.request_id, params.train_evaluator.main_share)
    figures: dict[str, float] = {}
    for role, mask in zip(ROLES, (main, ~main), strict=True):
        part = logs.subset(np.flatnonzero(mask))
        figures |= fit_evaluator(
            params, paths, meta, role, part, val_t, dest[role].stem, ((params.live,), (warm[role],)), warm[role],
            dest=dest[role],
        )  # fmt: skip
    return figures


def finetune_arm(
    params: Params,
    meta: SlateMeta,
    method: str,
    start: Path,
    evaluator: Path,
    teacher: ARTeacher,
    logs: Slates,
    seed: int,
    scale: dict[str, torch.Tensor] | None,
    viewport: int,
    tracking: str,
) -> tuple[PolicyRun, dict[str, Any]]:
    """One pass of ``method`` over the newest ``live.window`` logged requests from the arm's current generator
    (also the KL reference), rewarded by the updated evaluator; returns the run and the generator's record."""
    net, record = load_as(start, NARStudent)
    judge, judge_record = load_as(evaluator, ListEvaluator)
    cfg = params.finetune
    spec = reward_spec(params.data.reward, cfg, meta, judge_record["meta"], viewport)
    stream = stream_tensors(params.data.reward, params.live.window, meta, logs, net, teacher)
    lr = params.live.lr[method]
    run = train_policy(
        net, judge, spec, cfg, params.common, stream, method, lr, seed, teacher=teacher, tracking=tracking, scale=scale
    )
    return run, record


def best_of_n_pages(
    generator: Path, judge: Path, tensors: dict[str, torch.Tensor], request_ids: np.ndarray, n: int, params: Params
) -> torch.Tensor:
    """``[R, K]`` the pages a service of ``generator`` + ``judge`` (+ prior rules) serves to requests ``request_ids``
    with Best-of-``n``: the served temperature and seed, each request's draws keyed by its id as in the service."""
    reranker = Reranker.from_files(generator, judge, temperature=params.package.temperature, seed=params.package.seed)
    keys = [str(int(i)) for i in request_ids]
    batch, out = params.live.batch_size, []
    for s in range(0, len(keys), batch):
        x = SlateInputs.from_batch({k: v[s : s + batch] for k, v in tensors.items()})
        out.append(reranker.rerank(x, n, keys[s : s + batch]).pages)
    return torch.cat(out)


def gate(
    heldout: Judge, tensors: dict[str, torch.Tensor], current: torch.Tensor, challenger: torch.Tensor, margin: float
) -> dict[str, Any]:
    """Challenger against the arm's current version, both re-scored by the held-out evaluator on the same
    requests: promote only if the mean paired gain exceeds ``margin``."""
    cur = batched_scores(heldout, tensors, current[:, None])[:, 0]
    new = batched_scores(heldout, tensors, challenger[:, None])[:, 0]
    gain, half = metrics.mean_ci95(new - cur)
    return {
        "current": float(cur.mean()),
        "challenger": float(new.mean()),
        "gain": gain,
        "gain_ci95": half,
        "margin": margin,
        "promote": bool(gain > margin),
    }


def served_metadata(params: Params, generator: Path, meta: SlateMeta, viewport: int) -> dict[str, Any]:
    """What a registered version records to be served again (the release step's fields)."""
    hp = load_as(generator, NARStudent)[1]["hparams"]
    return {
        "n_samples": params.live.n_samples,
        "temperature": params.package.temperature,
        "seed": params.package.seed,
        "page_len": hp["page_len"],
        "n_item_features": hp["n_item_features"],
        "n_context_features": hp["n_context_features"],
        "max_candidates": meta.max_candidates,
        "viewport": viewport,
        "generator_file": generator.name,
    }


def register(params: Params, root: Path, generator: Path, judge: Path, metadata: dict, tags: dict[str, str]) -> str:
    """A new registry version of ``generator`` + ``judge`` (in the active MLflow run); its number."""
    return registry.register(params, generator, judge, metadata, tags, root)


def package(params: Params, files: dict[str, Path], version: str) -> str:
    """Import a version's files into the BentoML model store under the live loop's own name (so a service or
    benchmark started without a tag keeps serving the production cycle's package); the tag a service serves it by."""
    metadata = {
        "spec": model_spec(files, params),
        "package": params.package.model_dump(),
        "registry_version": f"{params.release.model_name}/{version}",
        "mlflow_model_version": version,
        "sources": {role: str(path) for role, path in files.items()},
    }
    return import_reranker(files, metadata, LIVE_MODEL_NAME)[0]
