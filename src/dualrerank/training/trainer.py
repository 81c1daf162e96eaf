"""One trainer factory for every stage: hardware from ``common``, MLflow logging, checkpoints for resume,
early stopping on the validation loss, a progress bar."""

from __future__ import annotations

import shutil
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

from dualrerank.config.common import CommonConfig
from dualrerank.config.training import OptimConfig


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
    weights into ``module``, and remove the resume checkpoints once training completed."""
    last = ckpt_dir / "last.ckpt"
    if last.exists():
        print(f"resuming from {last}", flush=True)
    trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if last.exists() else None)
    ckpt = next((cb for cb in trainer.callbacks if isinstance(cb, ModelCheckpoint)), None)  # type: ignore[attr-defined]
    best = ckpt.best_model_path if ckpt is not None else ""
    if best:
        import torch

        state = torch.load(best, map_location="cpu", weights_only=False)["state_dict"]  # our own checkpoint
        module.load_state_dict(state)
    if trainer.is_global_zero:
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
