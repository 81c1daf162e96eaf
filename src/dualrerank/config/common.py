"""``common`` section: seeds, hardware and tracking settings shared by every stage."""

from __future__ import annotations

from dataclasses import dataclass

from dualrerank.config.base import check


@dataclass(frozen=True)
class CommonConfig:
    seed: int = 7
    accelerator: str = "cpu"  # Lightning accelerator: cpu | gpu | auto
    devices: int = 1  # devices per node; > 1 with strategy ddp trains data-parallel
    strategy: str = "auto"  # Lightning strategy: auto | ddp | ddp_spawn | ...
    num_nodes: int = 1
    num_threads: int = 2  # torch intra-op threads on CPU
    mlflow_tracking_uri: str = "sqlite:///mlflow.db"  # MLFLOW_TRACKING_URI, if set, wins
    mlflow_experiment: str = "dual-rerank"
    progress: bool = True  # progress bars on long work

    def __post_init__(self) -> None:
        check(self.devices >= 1 and self.num_nodes >= 1, "devices and num_nodes must be >= 1")
        check(self.num_threads >= 1, "num_threads must be >= 1")
