"""Where every stage reads and writes: one place, relative to the repository root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    root: Path = Path(".")

    @property
    def data(self) -> Path:
        return self.root / "data"

    # raw: the logs and, for the simulated world, its ground truth
    @property
    def raw(self) -> Path:
        return self.data / "raw"

    @property
    def logs(self) -> Path:
        return self.raw / "logs.parquet"

    @property
    def world(self) -> Path:
        return self.raw / "world.npz"

    @property
    def oracle(self) -> Path:
        return self.raw / "oracle.npz"

    # processed: validated, split, padded slates
    @property
    def processed(self) -> Path:
        return self.data / "processed"

    def split(self, name: str) -> Path:
        return self.processed / f"{name}.npz"

    @property
    def meta(self) -> Path:
        return self.processed / "meta.json"

    # target lists of the supervised generators
    @property
    def targets(self) -> Path:
        return self.data / "targets"

    def target_file(self, split: str) -> Path:
        return self.targets / f"{split}.npz"

    # models and reports
    @property
    def models(self) -> Path:
        return self.data / "models"

    def model(self, name: str) -> Path:
        return self.models / f"{name}.ckpt"

    @property
    def reports(self) -> Path:
        return self.data / "reports"

    @property
    def plots(self) -> Path:
        return self.reports / "plots"

    def report(self, name: str) -> Path:
        return self.reports / name

    @property
    def checkpoints(self) -> Path:
        """Per-stage Lightning checkpoints used to resume interrupted training (not DVC outputs)."""
        return self.data / "checkpoints"
