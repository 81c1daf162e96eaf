"""The reranker object behind evaluation and the service (docs/method.md).

NAR mode: one encoder + NAR forward pass -> ``G`` lists by vectorized Gumbel-Max with the greedy list in
slot 0 -> one batched evaluator pass (+ prior rules) over all ``G`` lists -> the best list. Because the
greedy list is always a candidate, Best-of-N is never worse than greedy under its own scorer.
AR mode wraps the teacher (greedy or beam) behind the same interface for side-by-side comparisons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from dualrerank.models.components import SlateInputs
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.io import load_model
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.reranking.exported import ExportedEvaluator, ExportedStudent, candidate_sizes
from dualrerank.rewards import RewardSpec, prior_rule_scorer
from dualrerank.sampling import gumbel_max_pages, masked_sequential_argmax, request_seed

# A rule scorer maps (inputs, pages [B, G, K]) to an additive score [B, G] (prior rules: no feedback needed).
RuleScorer = Callable[[SlateInputs, Tensor], Tensor]


@dataclass(frozen=True)
class RerankResult:
    pages: Tensor  # [B, K] candidate indices, PAD_INDEX where the request has fewer than K candidates
    scores: Tensor  # [B] the judge's score of the returned page (NaN when no judge was used)
    greedy_scores: Tensor | None = None  # [B] the judge's score of the greedy list (None when not judged)
    slot_scores: Tensor | None = None  # [B, K] per-slot parts of the returned page's evaluator utility
    n_samples: Tensor | None = None  # [B] lists compared per request


def prior_rules(meta: dict[str, Any]) -> RuleScorer | None:
    """The prior-rule scorer a generator was trained with (``meta["reward_spec"]``, written by ``finetune``, or
    by the supervised stages from ``build_targets``' judge), or None: Best-of-N then judges lists by the
    evaluator alone. Rebuilt from the file, never from params."""
    spec = meta.get("reward_spec")
    return None if spec is None else prior_rule_scorer(RewardSpec.from_dict(spec))


@dataclass
class Judge:
    """Scores candidate lists: the evaluator's learned page utility (+ prior rules). Never the world."""

    evaluator: ListEvaluator | ExportedEvaluator
    item_weights: Tensor  # [L] weights of the per-slot responses
    page_weights: Tensor  # [P] weights of the page-level responses
    rules: RuleScorer | None = None
    responses: tuple[str, ...] = ()  # names of the L per-slot then P page-level responses (diagnostics)

    def __post_init__(self) -> None:
        self.evaluator.eval()

    @torch.inference_mode()
    def score(self, x: SlateInputs, pages: Tensor) -> Tensor:
        """``[B, G]`` score of lists ``[B, G, K]`` in one batched evaluator pass."""
        return self.score_parts(x, pages)[0]

    @torch.inference_mode()
    def score_parts(self, x: SlateInputs, pages: Tensor) -> tuple[Tensor, Tensor]:
        """``(score [B, G], per-slot evaluator utility [B, G, K])`` of lists ``[B, G, K]``, one evaluator pass."""
        slots, page = self.evaluator.utility_parts(x, pages, self.item_weights, self.page_weights)
        total = slots.sum(-1) + page
        return (total + self.rules(x, pages) if self.rules is not None else total), slots

    def exported(self, page_len: int, n_candidates: int, n_lists: int, threads: int) -> Judge:
        """This judge with its evaluator pass on ONNX Runtime (``reranking.exported``), traced at ``n_candidates``
        candidates and ``n_lists`` lists; the prior rules stay in torch."""
        if isinstance(self.evaluator, ExportedEvaluator):
            return self
        return replace(self, evaluator=ExportedEvaluator(self.evaluator, page_len, n_candidates, n_lists, threads))

    @classmethod
    def from_file(cls, path: Path, rules: RuleScorer | None = None) -> Judge:
        """Load an evaluator model file; its reward weights were recorded when it was trained."""
        net, record = load_model(path)
        if not isinstance(net, ListEvaluator):
            raise TypeError(f"{path} holds a {record['kind']}, not an evaluator")
        meta = record["meta"]
        item_w = torch.tensor(meta["item_weights"], dtype=torch.float32)
        page_w = torch.tensor(meta["page_weights"], dtype=torch.float32)
        return cls(net, item_w, page_w, rules, (*meta.get("feedback", ()), *meta.get("page_feedback", ())))


class Reranker:
    """Greedy / Best-of-N over a NAR student, or greedy / beam over an AR teacher."""

    def __init__(
        self,
        generator: ARTeacher | NARStudent | ExportedStudent,
        judge: Judge | None = None,
        temperature: float = 1.0,
        beam_width: int = 1,
        seed: int = 0,
    ) -> None:
        if not isinstance(generator, (ARTeacher, NARStudent, ExportedStudent)):
            raise TypeError(f"generator must be an ARTeacher or NARStudent, got {type(generator).__name__}")
        self.generator = generator.eval()
        self.page_len = generator.page_len
        self.judge = judge
        self.temperature, self.beam_width = temperature, beam_width
        self.mode = "ar" if isinstance(generator, ARTeacher) else "nar"
        self.seed = seed
        self.rng = torch.Generator().manual_seed(seed)

    @torch.inference_mode()
    def rerank(
        self, x: SlateInputs, n_samples: int | Tensor = 1, keys: Sequence[str | None] | None = None
    ) -> RerankResult:
        """Best page per request among its ``n_samples`` lists (1 = the greedy list, or the beam for AR).

        ``n_samples`` is one count for all requests or a ``[B]`` tensor (the service batches requests with
        different counts): ``max`` lists are drawn for all, and request b picks among its first ``n_b``.
        The draws are i.i.d. with the greedy list first, so that is exactly Best-of-``n_b``.

        ``keys`` (the service's request ids): request b's draws come from ``request_seed(seed, keys[b])``, so the
        same request gets the same page in any batch, on any replica and backend; a ``None`` key draws its seed
        from the reranker's stream. Without ``keys`` all draws come from the stream.
        """
        B = x.pad_mask.shape[0]
        counts = torch.as_tensor(n_samples, dtype=torch.long, device=x.pad_mask.device).expand(B)
        nan = torch.full((B,), float("nan"))
        if isinstance(self.generator, ARTeacher):
            teacher = self.generator
            pages = teacher.beam(x, self.beam_width) if self.beam_width > 1 else teacher.greedy(x)
            return RerankResult(pages, nan, n_samples=torch.ones_like(counts))
        logits = self.generator(x)  # [B, K, N], one pass
        G = int(counts.max())
        if G <= 1:
            return RerankResult(masked_sequential_argmax(logits, x.pad_mask), nan, n_samples=counts.clamp(max=1))
        if self.judge is None:
            raise ValueError("Best-of-N needs a judge (evaluator)")
        lists = self.draw(logits, x.pad_mask, G, keys)
        scores, slots = self.judge.score_parts(x, lists)  # [B, G], [B, G, K]: one batched evaluator pass
        eligible = torch.arange(G, device=counts.device) < counts[:, None]
        best = scores.masked_fill(~eligible, float("-inf")).argmax(dim=1)
        rows = torch.arange(B)
        return RerankResult(lists[rows, best], scores[rows, best], scores[:, 0], slots[rows, best], counts)

    def draw(self, logits: Tensor, pad_mask: Tensor, n: int, keys: Sequence[str | None] | None = None) -> Tensor:
        """``[B, n, K]`` the lists Best-of-``n`` chooses among, from NAR ``logits [B, K, N]``: the greedy list, then
        ``n - 1`` Gumbel-Max draws at the serving temperature, from this reranker's seeded stream or, with
        ``keys``, from each request's own seed."""
        seeds = None
        if keys is not None:
            stream = torch.randint(2**62, (len(keys),), generator=self.rng).tolist()
            seeds = [request_seed(self.seed, k) if k is not None else s for k, s in zip(keys, stream, strict=True)]
        return gumbel_max_pages(
            logits, pad_mask, n, self.temperature, include_greedy=True, generator=self.rng, seeds=seeds
        )

    def exported(
        self, n_candidates: int, n_lists: int, threads: int | None = None, max_candidates: int | None = None
    ) -> Reranker:
        """This Best-of-N reranker with the student's pass and the judge's evaluator pass on ONNX Runtime
        (``reranking.exported``: the same outputs to float rounding, less time per call), exported for requests of
        ``n_candidates`` candidates and ``n_lists`` lists; the student's graphs double in size from ``n_candidates``
        up to ``max_candidates`` (``candidate_sizes``), and larger requests run in torch. ``threads`` defaults to
        torch's. The AR teacher stays in torch."""
        if self.mode == "ar" or isinstance(self.generator, ExportedStudent):
            return self
        threads = threads or torch.get_num_threads()
        assert isinstance(self.generator, NARStudent)
        student = ExportedStudent(self.generator, threads, candidate_sizes(n_candidates, max_candidates))
        judge = self.judge.exported(self.page_len, n_candidates, n_lists, threads) if self.judge is not None else None
        out = Reranker(student, judge, self.temperature, self.beam_width, self.seed)
        out.rng = self.rng  # the same seeded stream of draws
        return out

    @classmethod
    def from_files(cls, generator: Path, evaluator: Path | None = None, **kwargs: object) -> Reranker:
        """Generator and judge from model files; the judge gets the generator's prior rules, if it has any."""
        net, record = load_model(generator)
        judge = Judge.from_file(evaluator, prior_rules(record["meta"])) if evaluator is not None else None
        return cls(net, judge, **kwargs)  # type: ignore[arg-type]
