"""``common`` section: seeds, hardware and tracking settings shared by every stage."""

from __future__ import annotations

from typing import Self

from pydantic import model_validator

from dualrerank.config.base import Section, check


class CommonConfig(Section):
    seed: int
    accelerator: str  # Lightning accelerator: cpu | gpu | auto
    devices: int  # devices per node; > 1 with strategy ddp trains data-parallel
    strategy: str  # Lightning strategy: auto | ddp | ddp_spawn | ...
    num_nodes: int
    num_threads: int  # torch intra-op threads on CPU
    mlflow_tracking_uri: str  # MLFLOW_TRACKING_URI, if set, wins
    mlflow_experiment: str
    progress: bool  # progress bars on long work

    @model_validator(mode="after")
    def _check(self) -> Self:
        check(self.devices >= 1 and self.num_nodes >= 1, "devices and num_nodes must be >= 1")
        check(self.num_threads >= 1, "num_threads must be >= 1")
        return self
