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

    # raw: the logs and, when the data has one, its ground truth
    @property
    def raw(self) -> Path:
        return self.data / "raw"

    @property
    def logs(self) -> Path:
        return self.raw / "logs.parquet"

    @property
    def truth(self) -> Path:
        """Ground truth of the logs, rewritten by every ``generate``: a world (simulated or built from LETOR
        labels) and its oracle, or nothing but ``source.json`` for logs without one (Parquet/CSV)."""
        return self.raw / "truth"

    @property
    def world(self) -> Path:
        return self.truth / "world.npz"

    @property
    def oracle(self) -> Path:
        return self.truth / "oracle.npz"

    @property
    def relevance(self) -> Path:
        """Graded relevance labels of the candidates (LETOR data), for NDCG on graded labels."""
        return self.truth / "relevance.npz"

    @property
    def source(self) -> Path:
        return self.truth / "source.json"

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

    @property
    def target_judge(self) -> Path:
        """The reward spec of the judge that chose the targets (absent when no judge did)."""
        return self.targets / "reward_spec.json"

    @property
    def explore_logs(self) -> Path:
        """The on-policy round's logs (stage ``explore``): request id, shown page, its feedback."""
        return self.data / "explore" / "logs.npz"

    # models and reports
    @property
    def models(self) -> Path:
        return self.data / "models"

    def model(self, name: str) -> Path:
        return self.models / f"{name}.ckpt"

    @property
    def judge(self) -> Path:
        """The evaluator of every stage after ``explore``: fine-tuning reward, Best-of-N judge, the released and
        packaged judge. Retrained with the on-policy round's logs (the logged ``evaluator.ckpt`` copied where
        there is no round)."""
        return self.model("evaluator_explore")

    @property
    def heldout_judge(self) -> Path:
        """Its held-out counterpart (the other half of the requests): selection and the reward-hacking gap."""
        return self.model("evaluator_heldout_explore")

    @property
    def reports(self) -> Path:
        return self.data / "reports"

    @property
    def plots(self) -> Path:
        return self.reports / "plots"

    def report(self, name: str) -> Path:
        return self.reports / name

    @property
    def live(self) -> Path:
        """The live loop's state: its impression log store, model files, service logs (``dualrerank live``)."""
        return self.data / "live"

    @property
    def checkpoints(self) -> Path:
        """Per-stage Lightning checkpoints used to resume interrupted training (not DVC outputs)."""
        return self.data / "checkpoints"
