"""Which process writes: under data-parallel training every rank runs the whole stage, one writes.

Launchers tell a process its rank through the environment: Lightning's DDP launcher (``LOCAL_RANK`` and
``NODE_RANK`` of the processes it starts, ``LOCAL_RANK=0`` in the one that started them), ``torchrun``
(``RANK``) and SLURM (``SLURM_PROCID``). Read here without importing Lightning, so a step that never
trains does not pay for it.
"""

from __future__ import annotations

import os

RANK_VARIABLES = ("RANK", "SLURM_PROCID", "LOCAL_RANK", "NODE_RANK")


def is_rank_zero() -> bool:
    """True in the process that writes model files and MLflow runs: global rank 0, or the only process."""
    return all(int(os.environ.get(name, "0") or 0) == 0 for name in RANK_VARIABLES)
