"""Pure loss functions, selected by name from config through ``LOSSES``.

Every loss returns a scalar tensor (mean over valid positions), never calls ``.item()`` and is differentiable
with respect to its logits inputs. ``LOSSES["name"]`` with an unknown name raises a ``KeyError`` listing the
valid names.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from dualrerank.losses.distillation import hard_kd_loss, sequential_kd_loss
from dualrerank.losses.ranking import bpr_loss, mle_loss
from dualrerank.losses.weights import rank_decay_weights

__all__ = ["LOSSES", "bpr_loss", "hard_kd_loss", "mle_loss", "rank_decay_weights", "sequential_kd_loss"]


class _Registry(dict[str, Callable[..., Tensor]]):
    def __missing__(self, name: str) -> Callable[..., Tensor]:
        raise KeyError(f"unknown loss {name!r}; valid: {', '.join(sorted(self))}")


LOSSES = _Registry(mle=mle_loss, bpr=bpr_loss, kd=sequential_kd_loss, hard_kd=hard_kd_loss)
