"""Seeding without importing Lightning: the same effects as ``lightning.seed_everything`` (Python's ``random``,
NumPy, torch on every device, and the ``PL_GLOBAL_SEED`` / ``PL_SEED_WORKERS`` variables Lightning reads later),
so a stage that never trains does not pay Lightning's import (about 4 s per process on 2 cores)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, workers: bool = False) -> int:
    """Seed every generator with ``seed``; ``workers`` has Lightning's trainers seed their data-loader workers."""
    seed = int(seed)
    if not np.iinfo(np.uint32).min <= seed <= np.iinfo(np.uint32).max:
        raise ValueError(f"seed {seed} is out of bounds: NumPy accepts 0 to {np.iinfo(np.uint32).max}")
    os.environ["PL_GLOBAL_SEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PL_SEED_WORKERS"] = str(int(workers))
    return seed
