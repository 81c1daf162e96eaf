"""The reranker object behind evaluation and the service (METHOD §6).

NAR mode: one encoder + NAR forward pass -> ``G`` lists by vectorized Gumbel-Max with the greedy list in
slot 0 -> one batched evaluator pass (+ prior rules) over all ``G`` lists -> the best list. Because the
greedy list is always a candidate, Best-of-N is never worse than greedy under its own scorer.
AR mode wraps the teacher (greedy or beam) behind the same interface for side-by-side comparisons.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from dualrerank.models.components import SlateInputs
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.io import load_model
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.sampling import gumbel_max_sample, masked_sequential_argmax

# A rule scorer maps (inputs, pages [B, G, K]) to an additive score [B, G] (prior rules: no feedback needed).
RuleScorer = Callable[[SlateInputs, Tensor], Tensor]


@dataclass(frozen=True)
class RerankResult:
    pages: Tensor  # [B, K] candidate indices, PAD_INDEX where the request has fewer than K candidates
    scores: Tensor  # [B] the judge's score of the returned page (NaN when no judge was used)


@dataclass
class Judge:
    """Scores candidate lists: the evaluator's learned page utility (+ prior rules). Never the world."""

    evaluator: ListEvaluator
    item_weights: Tensor  # [L] weights of the per-slot responses
    page_weights: Tensor  # [P] weights of the page-level responses
    rules: RuleScorer | None = None

    def __post_init__(self) -> None:
        self.evaluator.eval()

    @torch.inference_mode()
    def score(self, x: SlateInputs, pages: Tensor) -> Tensor:
        """``[B, G]`` score of lists ``[B, G, K]`` in one batched evaluator pass."""
        total = self.evaluator.utility(x, pages, self.item_weights, self.page_weights)
        return total + self.rules(x, pages) if self.rules is not None else total

    @classmethod
    def from_file(cls, path: Path, rules: RuleScorer | None = None) -> Judge:
        """Load an evaluator model file; its reward weights were recorded when it was trained."""
        net, record = load_model(path)
        if not isinstance(net, ListEvaluator):
            raise TypeError(f"{path} holds a {record['kind']}, not an evaluator")
        item_w = torch.tensor(record["meta"]["item_weights"], dtype=torch.float32)
        page_w = torch.tensor(record["meta"]["page_weights"], dtype=torch.float32)
        return cls(net, item_w, page_w, rules)


class Reranker:
    """Greedy / Best-of-N over a NAR student, or greedy / beam over an AR teacher."""

    def __init__(
        self,
        generator: ARTeacher | NARStudent,
        judge: Judge | None = None,
        temperature: float = 1.0,
        beam_width: int = 1,
        seed: int = 0,
    ) -> None:
        if not isinstance(generator, (ARTeacher, NARStudent)):
            raise TypeError(f"generator must be an ARTeacher or NARStudent, got {type(generator).__name__}")
        self.generator = generator.eval()
        self.page_len = generator.page_len
        self.judge = judge
        self.temperature, self.beam_width = temperature, beam_width
        self.mode = "ar" if isinstance(generator, ARTeacher) else "nar"
        self.rng = torch.Generator().manual_seed(seed)

    @torch.inference_mode()
    def rerank(self, x: SlateInputs, n_samples: int = 1) -> RerankResult:
        """Best page per request among ``n_samples`` lists (1 = the greedy list, or the beam for AR)."""
        B = x.pad_mask.shape[0]
        nan = torch.full((B,), float("nan"))
        if isinstance(self.generator, ARTeacher):
            teacher = self.generator
            pages = teacher.beam(x, self.beam_width) if self.beam_width > 1 else teacher.greedy(x)
            return RerankResult(pages, nan)
        logits = self.generator(x)  # [B, K, N], one pass
        if n_samples <= 1:
            return RerankResult(masked_sequential_argmax(logits, x.pad_mask), nan)
        if self.judge is None:
            raise ValueError("Best-of-N needs a judge (evaluator)")
        lists, _ = gumbel_max_sample(
            logits, x.pad_mask, n_samples, temperature=self.temperature, include_greedy=True, generator=self.rng
        )
        scores = self.judge.score(x, lists)  # [B, G], one batched evaluator pass
        best = scores.argmax(dim=1)
        rows = torch.arange(B)
        return RerankResult(lists[rows, best], scores[rows, best])

    @classmethod
    def from_files(cls, generator: Path, evaluator: Path | None = None, **kwargs: object) -> Reranker:
        net, _ = load_model(generator)
        judge = Judge.from_file(evaluator) if evaluator is not None else None
        return cls(net, judge, **kwargs)  # type: ignore[arg-type]
