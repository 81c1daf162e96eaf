"""Stage ``train_evaluator``: the list-wise evaluator (reward of RL, judge of Best-of-N) and the held-out
evaluator (a different architecture and seed, trained on a disjoint part of the training logs; it only
judges, it is never a reward)."""

from __future__ import annotations

import numpy as np

from dualrerank.config import Params
from dualrerank.data.datamodule import slate_tensors
from dualrerank.paths import Paths
from dualrerank.stages.common import load_data
from dualrerank.stages.evaluator_fit import fit_evaluator, halves

SECTIONS = ("data", "world", "train_evaluator")


def run(params: Params, paths: Paths) -> dict[str, float]:
    meta, data = load_data(paths)
    main_rows = halves(len(data["train"]), params.train_evaluator.main_share)
    val_t = slate_tensors(data["val"])
    figures: dict[str, float] = {}
    for role, rows in (("evaluator", main_rows), ("evaluator_heldout", ~main_rows)):
        part = data["train"].subset(np.flatnonzero(rows))
        figures |= fit_evaluator(params, paths, meta, role, part, val_t, role)
    return figures
