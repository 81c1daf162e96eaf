"""One trainer factory for every stage: hardware from ``common``, MLflow logging, checkpoints for resume,
early stopping on the validation loss, a progress bar; and the DataModule feeding them a stage's tensors.

Resume is exact: ``last.ckpt`` holds the model, optimizer, scheduler, loop and callback states and, through
:class:`RngState`, the random generators, so a run killed after epoch ``e`` and rerun ends with the same
weights as one that was never interrupted (single process; ``tests/integration/test_resume.py``).

Data-parallel training (``common.devices > 1`` or ``num_nodes > 1`` with ``strategy: ddp``) shards every
epoch with Lightning's distributed sampler; only rank zero writes files or MLflow runs (``training.ranks``).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from torch import Tensor
from torch.utils.data import DataLoader

from dualrerank.config.common import CommonConfig
from dualrerank.config.training import OptimConfig
from dualrerank.data.datamodule import TensorDictDataset


class RngState(Callback):
    """Save the torch random generators in checkpoints and restore them on resume: without them a resumed
    run shuffles and drops out differently from the interrupted one."""

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state()}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def mlflow_logger(experiment: str, tracking_uri: str) -> object | bool:
    """Log into the MLflow run the stage opened, if any (``False`` = no logger)."""
    import mlflow

    run = mlflow.active_run()
    if run is None:
        return False
    from lightning.pytorch.loggers import MLFlowLogger

    return MLFlowLogger(experiment_name=experiment, tracking_uri=tracking_uri, run_id=run.info.run_id)


def build_trainer(common: CommonConfig, optim: OptimConfig, ckpt_dir: Path, tracking_uri: str) -> L.Trainer:
    """A Trainer whose ``last.ckpt`` in ``ckpt_dir`` lets an interrupted run resume."""
    callbacks = [
        ModelCheckpoint(
            dirpath=ckpt_dir, filename="best", monitor="val/loss", mode="min", save_last=True, save_top_k=1
        ),
        EarlyStopping(monitor="val/loss", mode="min", patience=optim.patience),
        RngState(),
    ]
    return L.Trainer(
        accelerator=common.accelerator,
        devices=common.devices,
        strategy=common.strategy,
        num_nodes=common.num_nodes,
        max_epochs=optim.max_epochs,
        limit_train_batches=optim.limit_train_batches
        if optim.limit_train_batches <= 1
        else int(optim.limit_train_batches),
        gradient_clip_val=optim.grad_clip,
        callbacks=callbacks,
        logger=mlflow_logger(common.mlflow_experiment, tracking_uri),  # type: ignore[arg-type]
        enable_progress_bar=common.progress,
        enable_model_summary=False,
        log_every_n_steps=10,
        num_sanity_val_steps=0,
        default_root_dir=str(ckpt_dir),
    )


def fit(
    trainer: L.Trainer, module: L.LightningModule, datamodule: L.LightningDataModule, ckpt_dir: Path
) -> L.LightningModule:
    """Train (resuming from ``ckpt_dir/last.ckpt`` if a previous run was interrupted), restore the best
    weights into ``module`` (on rank 0, the one that saves it), and remove the resume checkpoints.

    Checkpoints are read with ``weights_only=True``: they hold only tensors and plain containers."""
    last = ckpt_dir / "last.ckpt"
    resume = str(last) if last.exists() else None
    if resume is not None:
        state = torch.load(last, map_location="cpu", weights_only=True)
        print(f"resuming from {last} (epoch {state['epoch']}, global step {state['global_step']})", flush=True)
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    ckpt = next((cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)), None)  # type: ignore[attr-defined]
    best = ckpt.best_model_path if ckpt is not None else ""
    if trainer.is_global_zero:  # the other ranks write nothing; they must not race rank 0's clean-up
        if best:
            module.load_state_dict(torch.load(best, map_location="cpu", weights_only=True)["state_dict"])
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    return module


def build_stream_trainer(common: CommonConfig, tracking_uri: str, log_every: int = 10) -> L.Trainer:
    """A Trainer for one pass over a streamed dataset (RL fine-tuning): no validation loop, no checkpoints
    (the stage keeps the chosen weights), logging into the active MLflow run if any."""
    return L.Trainer(
        accelerator=common.accelerator,
        devices=1,
        max_epochs=1,
        logger=mlflow_logger(common.mlflow_experiment, tracking_uri),  # type: ignore[arg-type]
        enable_checkpointing=False,
        enable_progress_bar=common.progress,
        enable_model_summary=False,
        log_every_n_steps=log_every,
        num_sanity_val_steps=0,
        limit_val_batches=0,
    )


class SlateDataModule(L.LightningDataModule):
    """Train/validation tensors prepared by a stage; shuffled training batches, ordered validation."""

    def __init__(self, train: dict[str, Tensor], val: dict[str, Tensor], batch_size: int, num_workers: int = 0) -> None:
        super().__init__()
        self.train, self.val = train, val
        self.batch_size, self.num_workers = batch_size, num_workers

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            TensorDictDataset(self.train), batch_size=self.batch_size, shuffle=True, num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDictDataset(self.val), batch_size=4 * self.batch_size, num_workers=self.num_workers)
