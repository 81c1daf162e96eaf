"""Stage ``build_targets``: the target lists the supervised generators learn from (train and val).

Options [ours]: the logged page reordered by observed reward, the logged order (optionally reward-weighted),
or — the default — the best of Plackett-Luce perturbations of the pointwise ranking under the hybrid judge
(list-wise evaluator + the prior rules of the business objective, ``data.reward.prior``).
See ``training/relabel.py`` for why.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from dualrerank.config import Params
from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.targets import build_targets
from dualrerank.models.io import load_as, load_model
from dualrerank.models.pointwise import PointwiseScorer
from dualrerank.paths import Paths
from dualrerank.reranking import Judge
from dualrerank.rewards import build_reward_spec, prior_rule_scorer
from dualrerank.stages.common import load_data
from dualrerank.training.relabel import evaluator_best_targets

SECTIONS = ("data", "world", "build_targets")


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg, reward = params.build_targets, params.data.reward
    meta, data = load_data(paths)
    figures: dict[str, float] = {}
    judge = pointwise = heldout = None
    paths.targets.mkdir(parents=True, exist_ok=True)
    paths.target_judge.unlink(missing_ok=True)
    if cfg.kind == "evaluator_best":
        _, record = load_model(paths.model("evaluator"))
        spec = build_reward_spec(reward, meta.item_features, record["meta"], params.world.viewport)
        judge = Judge.from_file(paths.model("evaluator"), rules=prior_rule_scorer(spec))
        figures["rules_off"] = len(spec.extra["rules_off"])
        pointwise, _ = load_as(paths.model("pointwise"), PointwiseScorer)
        heldout = Judge.from_file(paths.model("evaluator_heldout"))  # a check on the targets, never a criterion
        # the generators trained on these targets record the judge they were chosen by
        paths.target_judge.write_text(json.dumps(spec.to_dict(), indent=2))
    for split, slates in data.items():
        kind = "reward_sorted" if cfg.kind == "evaluator_best" else cfg.kind
        target, weight = build_targets(slates, meta, reward.item, reward.page, kind, cfg.weight_temperature)
        if judge is not None and pointwise is not None:
            tensors = slate_tensors(slates)
            best, stats = evaluator_best_targets(
                judge,
                pointwise,
                tensors,
                torch.from_numpy(target),
                cfg.n_proposals,
                cfg.proposal_temperature,
                cfg.seed,
                heldout=heldout,
            )
            target = best.numpy()
            figures.update({f"{split}_{k}": float(v) for k, v in stats.__dict__.items() if v is not None})
        with open(paths.target_file(split), "wb") as fh:
            np.savez(fh, request_id=slates.request_id, target=target, weight=weight)
    paths.reports.mkdir(parents=True, exist_ok=True)
    paths.report("targets.json").write_text(json.dumps({"kind": cfg.kind, **figures}, indent=2))
    return figures
