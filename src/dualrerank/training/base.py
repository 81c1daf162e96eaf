"""Shared LightningModule behaviour: the optimizer and the train/val logging pattern."""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import lightning as L
import torch
from torch import Tensor, nn

from dualrerank.models.components import SlateInputs


class LitBase(L.LightningModule):
    """Subclasses implement ``step(batch) -> (loss, metrics)``; this class logs ``train/*`` and ``val/*``."""

    def __init__(self, net: nn.Module, lr: float, weight_decay: float) -> None:
        super().__init__()
        self.net = net
        self.lr, self.weight_decay = lr, weight_decay

    @staticmethod
    def inputs(batch: dict[str, Tensor]) -> SlateInputs:
        return SlateInputs.from_batch(batch)

    def step(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        raise NotImplementedError

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        loss, metrics = self.step(batch)
        size = batch["pad_mask"].shape[0]
        self.log("train/loss", loss, prog_bar=True, on_step=False, on_epoch=True, batch_size=size)
        self.log_dict({f"train/{k}": v for k, v in metrics.items()}, on_step=False, on_epoch=True, batch_size=size)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        loss, metrics = self.step(batch)
        size = batch["pad_mask"].shape[0]
        self.log("val/loss", loss, prog_bar=True, sync_dist=True, batch_size=size)
        self.log_dict({f"val/{k}": v for k, v in metrics.items()}, sync_dist=True, batch_size=size)

    def configure_optimizers(self) -> Any:
        params = [p for p in self.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, partial(warmup_cosine, total=total))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def warmup_cosine(step: int, total: int, warmup_share: float = 0.05, floor: float = 0.05) -> float:
    """LR multiplier: linear warm-up over the first ``warmup_share`` of steps, then cosine down to ``floor``."""
    warmup = max(1, int(warmup_share * total))
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))
