"""The Best-of-N networks as ONNX Runtime sessions: the same weights and the same outputs, less time per call.

At serving sizes (one request, 50 candidates, 64 lists) eager torch spends much of its time dispatching several
hundred small operators one by one. Exported to ONNX (torch's tracing exporter) and run by ONNX Runtime, which
fuses and plans the whole graph, the NAR student's pass and the judge's evaluator pass cost less
(docs/serving.md). What stays in torch: the Gumbel-Max draws (the reranker's
seeded stream) and the judge's prior rules (a quantile per request, cheap). Outputs agree with eager torch to
float rounding (tests/unit/test_exported.py).

The evaluator's graph takes any request, candidate and list count; its Python branches that depend on sizes only
(``PageView.of``: pair terms on the candidates or on the slots) keep the branch of the traced ``n_candidates`` and
``n_lists``, which changes the cost of other sizes, never their values. The student's graphs are per candidate
count (``ExportedStudent``), and a request is padded up to the nearest one.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as nnf
from torch import Tensor, nn

from dualrerank.models.components import SlateInputs
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.student import NARStudent

INPUTS = SlateInputs._fields  # item_features, context, upstream_score, upstream_rank, pad_mask
_AXES = {"item_features": {0: "B", 1: "N"}, "context": {0: "B"}, "upstream_score": {0: "B", 1: "N"}}
AXES = {**_AXES, "upstream_rank": {0: "B", 1: "N"}, "pad_mask": {0: "B", 1: "N"}}  # free sizes of the inputs


def example_inputs(n_item_features: int, n_context_features: int, n_candidates: int) -> SlateInputs:
    """One request of ``n_candidates`` candidates, the shape an export traces (values do not matter)."""
    gen = torch.Generator().manual_seed(0)
    return SlateInputs(
        item_features=torch.randn(1, n_candidates, n_item_features, generator=gen),
        context=torch.randn(1, n_context_features, generator=gen),
        upstream_score=torch.randn(1, n_candidates, generator=gen),
        upstream_rank=torch.arange(1, n_candidates + 1, dtype=torch.float32)[None],
        pad_mask=torch.zeros(1, n_candidates, dtype=torch.bool),
    )


def example_lists(n_candidates: int, n_lists: int, page_len: int) -> Tensor:
    """``[1, n_lists, page_len]`` distinct items per list (-1 past the candidates), for an export to trace."""
    slots = torch.arange(page_len)
    lists = (slots[None] + torch.arange(n_lists)[:, None]) % max(n_candidates, 1)
    return lists.masked_fill(slots[None] >= n_candidates, -1)[None]


def export(
    module: nn.Module, args: tuple[Tensor, ...], names: Sequence[str], outputs: Sequence[str], axes: dict
) -> bytes:
    """``module`` as an ONNX model (bytes). Traced with autograd on, so torch's inference-only fused Transformer
    kernels (which have no ONNX form) stay out of the trace; the tracing exporter's deprecation notice is muted."""
    buf = io.BytesIO()
    with torch.inference_mode(False), torch.enable_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        args = tuple(a.clone() for a in args)  # tensors made under inference mode cannot enter a trace
        torch.onnx.export(  # a file object is fine, though the annotation says path
            module.eval(),
            args,
            buf,  # type: ignore[arg-type]
            dynamo=False,
            input_names=list(names),
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=17,
        )
    return buf.getvalue()


class Session:
    """An ONNX Runtime session over CPU tensors: named torch inputs in, torch outputs back. ``fixed`` fixes named free
    sizes (``{"B": 1}``), which lets ONNX Runtime fold the graph's size arithmetic away."""

    def __init__(self, model: bytes, threads: int, fixed: Mapping[str, int] | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise RuntimeError("backend 'onnx' needs the onnxruntime package (pip install onnxruntime)") from exc
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        for name, size in (fixed or {}).items():
            opts.add_free_dimension_override_by_name(name, size)
        self.session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        self.inputs = [i.name for i in self.session.get_inputs()]  # inputs the graph does not read are dropped

    def __call__(self, **values: Tensor) -> list[Tensor]:
        feeds = {name: np.ascontiguousarray(values[name].detach().cpu().numpy()) for name in self.inputs}
        return [torch.from_numpy(out) for out in self.session.run(None, feeds)]


class Graph:
    """One exported graph: a session for any sizes, plus sessions with the sizes of ``fixed`` fixed (the shapes
    expected most, e.g. one request of the typical size), used when a call has exactly those sizes."""

    def __init__(self, model: bytes, threads: int, fixed: Sequence[Mapping[str, int]] = ()) -> None:
        self.free = Session(model, threads)
        self.fixed = {tuple(sorted(sizes.items())): Session(model, threads, sizes) for sizes in fixed}

    def __call__(self, sizes: Mapping[str, int], **values: Tensor) -> list[Tensor]:
        return self.fixed.get(tuple(sorted(sizes.items())), self.free)(**values)


class _StudentGraph(nn.Module):
    def __init__(self, student: NARStudent) -> None:
        super().__init__()
        self.student = student

    def forward(self, *inputs: Tensor) -> Tensor:
        return self.student(SlateInputs(*inputs))


class _EvaluatorGraph(nn.Module):
    def __init__(self, evaluator: ListEvaluator) -> None:
        super().__init__()
        self.evaluator = evaluator

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        *x, pages, item_weights, page_weights = inputs
        return self.evaluator.utility_parts(SlateInputs(*x), pages, item_weights, page_weights)


def _widths(net: NARStudent | ListEvaluator) -> tuple[int, int]:
    inputs = net.encoder.inputs if isinstance(net, NARStudent) else net.inputs
    return int(inputs.item_mean.numel()) - 2, int(inputs.ctx_mean.numel())


def padded(x: SlateInputs, n: int) -> SlateInputs:
    """``x`` with padding candidates appended up to ``n`` (masked: the networks' outputs on real ones do not change)."""
    extra = n - x.pad_mask.shape[1]
    if extra <= 0:
        return x
    return SlateInputs(
        nnf.pad(x.item_features, (0, 0, 0, extra)),
        x.context,
        nnf.pad(x.upstream_score, (0, extra)),
        nnf.pad(x.upstream_rank, (0, extra)),
        nnf.pad(x.pad_mask, (0, extra), value=True),
    )


class ExportedStudent:
    """A NAR student's forward pass on ONNX Runtime: ``(SlateInputs) -> logits [B, K, N]``, as ``NARStudent``.

    The tracing exporter keeps the length of an attention's own sequence fixed (torch's multi-head attention
    reshapes by it), and the student attends over the candidates: so there is one graph per candidate count in
    ``sizes`` (request counts stay free). A request runs on the smallest size that holds its candidates, padded up to
    it (padding is masked, so the real candidates' logits are the same); a request larger than every size runs in
    eager torch.
    """

    def __init__(self, student: NARStudent, threads: int, sizes: Sequence[int]) -> None:
        self.student, self.page_len = student.eval(), student.page_len
        widths = _widths(student)
        graph = _StudentGraph(student)
        self.sessions = {  # one request at a time is what a service mostly runs: that size is fixed too
            n: Graph(export(graph, tuple(example_inputs(*widths, n)), INPUTS, ["logits"], AXES), threads, [{"B": 1}])
            for n in sorted(set(sizes))
        }

    def eval(self) -> ExportedStudent:
        return self

    def __call__(self, x: SlateInputs) -> Tensor:
        n = x.pad_mask.shape[1]
        size = next((size for size in self.sessions if size >= n), None)
        if size is None:
            with torch.inference_mode():
                return self.student(x)
        return self.sessions[size]({"B": x.pad_mask.shape[0]}, **padded(x, size)._asdict())[0][..., :n]


class ExportedEvaluator:
    """A list evaluator's ``utility_parts`` on ONNX Runtime (the judge's one evaluator pass over all lists)."""

    def __init__(self, evaluator: ListEvaluator, page_len: int, n_candidates: int, n_lists: int, threads: int) -> None:
        x = example_inputs(*_widths(evaluator), n_candidates)
        pages = example_lists(n_candidates, n_lists, page_len)
        weights = (torch.ones(len(evaluator.item_kinds)), torch.ones(len(evaluator.page_kinds)))
        names = (*INPUTS, "pages", "item_weights", "page_weights")
        axes = {**AXES, "pages": {0: "B", 1: "G"}}
        model = export(_EvaluatorGraph(evaluator), (*x, pages, *weights), names, ["slots", "page"], axes)
        self.graph = Graph(model, threads, [{"B": 1, "N": n_candidates, "G": n_lists}])

    def eval(self) -> ExportedEvaluator:
        return self

    def utility_parts(
        self, x: SlateInputs, pages: Tensor, item_weights: Tensor, page_weights: Tensor
    ) -> tuple[Tensor, Tensor]:
        """As ``ListEvaluator.utility_parts``: ``(per-slot parts [B, G, K], page part [B, G])``."""
        B, G, _ = pages.shape
        sizes = {"B": B, "N": x.pad_mask.shape[1], "G": G}
        weights = {"item_weights": item_weights, "page_weights": page_weights}
        slots, page = self.graph(sizes, **x._asdict(), pages=pages, **weights)
        return slots, page


def candidate_sizes(n_candidates: int, max_candidates: int | None = None) -> tuple[int, ...]:
    """The student's exported candidate counts: ``n_candidates``, then doubling up to ``max_candidates`` (so a
    request pads to at most twice its size)."""
    sizes = [n_candidates]
    while max_candidates is not None and sizes[-1] < max_candidates:
        sizes.append(min(2 * sizes[-1], max_candidates))
    return tuple(sizes)
