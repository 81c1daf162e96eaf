"""The registered reranker as an MLflow pyfunc model, logged "from code" (this file travels with every
registered version and is executed on load, so no pickled Python object is ever deserialised).

``mlflow.pyfunc.load_model("models:/dual-rerank@champion").predict(inputs)`` reranks model inputs: arrays
``item_features [B, N, F]``, ``context [B, C]``, ``upstream_score [B, N]``, ``upstream_rank [B, N]`` and
``pad_mask [B, N]``; it returns ``[B, K]`` candidate indices (-1 where a request has fewer than K).
The ``dualrerank`` package must be importable where the model is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import numpy as np
import torch
from mlflow.pyfunc.model import PythonModel

from dualrerank.models.components import SlateInputs
from dualrerank.reranking import Reranker


class RerankerModel(PythonModel):
    """Best-of-N NAR reranker: the generator proposes ``n_samples`` lists, the judge picks one."""

    def load_context(self, context):  # type: ignore[no-untyped-def]
        meta = json.loads(Path(context.artifacts["metadata"]).read_text())
        self.n_samples = int(meta["n_samples"])
        self.reranker = Reranker.from_files(
            Path(context.artifacts["generator"]),
            Path(context.artifacts["evaluator"]),
            temperature=float(meta["temperature"]),
            seed=int(meta["seed"]),
        )

    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        # untyped on purpose: MLflow derives an input schema from type hints, and these inputs are a dict of arrays
        x = SlateInputs.from_batch({k: torch.as_tensor(np.asarray(v)) for k, v in model_input.items()})
        n = int((params or {}).get("n_samples", self.n_samples))
        return self.reranker.rerank(x, n).pages.numpy()


mlflow.models.set_model(RerankerModel())
