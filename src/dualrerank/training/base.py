"""Shared LightningModule behaviour: the optimizer and the train/val logging pattern."""

from __future__ import annotations

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
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.lr, total_steps=total, pct_start=0.1)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
