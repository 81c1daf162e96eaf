"""The MLflow model registry: what a release is, and how to get the champion's files back.

Each release registers the reranker as a new version of one registered model (``release.model_name``): a
pyfunc model (code: ``pyfunc_model.py``) whose artifacts are the NAR generator, its Best-of-N judge (the
training evaluator) and ``release.json`` (what the serving side and later releases need: the served
Best-of-N size, shapes, the figures it was released with, the git commit and data version). The
``champion`` alias (``release.alias``) names the version to serve; only the ``release`` stage moves it.
``package`` and later releases fetch the champion's files with :func:`download`;
``mlflow.pyfunc.load_model("models:/NAME@champion")`` gives a model whose ``predict`` reranks model
inputs. Each version carries its signature (named input arrays, the ``[B, K]`` ranking out), an input
example, and the ``dualrerank`` package itself (``code_paths``), so it loads in a fresh environment that has
only the listed requirements (torch, numpy, mlflow).
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import ColSpec, Schema, TensorSpec

from dualrerank.config import Params
from dualrerank.tracking import tracking_uri, use_experiment

MODEL_CODE = Path(__file__).with_name("pyfunc_model.py")
PACKAGE = Path(__file__).parent  # src/dualrerank, shipped with every version (code_paths)
EXAMPLE_CANDIDATES = 12  # candidates of the one request in each version's input example
ARTIFACTS = {"generator": "generator.ckpt", "evaluator": "evaluator.ckpt", "metadata": "release.json"}


def client(params: Params, root: Path = Path(".")) -> MlflowClient:
    uri = tracking_uri(params, root)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def champion(params: Params, root: Path = Path(".")) -> ModelVersion | None:
    """The version the alias points at, or ``None`` when there is no such model or alias yet."""
    return by_alias(params, params.release.alias, root)


def by_alias(params: Params, alias: str, root: Path = Path(".")) -> ModelVersion | None:
    """The version ``alias`` points at, or ``None`` when there is no such model or alias yet."""
    cfg, mlflow_client = params.release, client(params, root)
    try:
        model = mlflow_client.get_registered_model(cfg.model_name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    if alias not in (model.aliases or {}):
        return None
    return mlflow_client.get_model_version_by_alias(cfg.model_name, alias)


def latest(params: Params, root: Path = Path(".")) -> ModelVersion | None:
    """The newest registered version (whatever its gate said), or ``None`` when nothing is registered yet."""
    try:
        versions = client(params, root).search_model_versions(f"name='{params.release.model_name}'")
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    return max(versions, key=lambda v: int(v.version), default=None)


def download(params: Params, version: str, dest: Path, root: Path = Path(".")) -> dict[str, Path]:
    """Copy a registered version's files into ``dest``; returns ``{"generator", "evaluator", "metadata"}`` paths.

    The version is resolved in this project's registry by its own client: ``download_artifacts`` on a ``models:/``
    URI would resolve it in MLflow's process-wide registry, which another project's run may have set."""
    uri = f"models:/{params.release.model_name}/{version}"
    source = client(params, root).get_model_version_download_uri(params.release.model_name, version)
    store = tracking_uri(params, root)
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(dest), tracking_uri=store))
    files = {name: local / "artifacts" / file for name, file in ARTIFACTS.items()}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise FileNotFoundError(f"registered version {uri} lacks {missing}: not a Dual-Rerank release")
    return files


def register(
    params: Params,
    generator: Path,
    evaluator: Path,
    metadata: dict[str, Any],
    tags: dict[str, str],
    root: Path = Path("."),
) -> str:
    """Log the pyfunc model in the active MLflow run and register it; returns the new version number."""
    cfg = params.release
    if mlflow.active_run() is None:  # a release is always recorded: open its run if the caller did not
        use_experiment(params, root)
    run = mlflow.start_run(run_name="release") if mlflow.active_run() is None else nullcontext()
    with run, tempfile.TemporaryDirectory() as tmp:
        files = {name: Path(tmp) / file for name, file in ARTIFACTS.items()}  # artifacts keep their file names
        shutil.copyfile(generator, files["generator"])
        shutil.copyfile(evaluator, files["evaluator"])
        files["metadata"].write_text(json.dumps(metadata, indent=2))
        example = input_example(generator)
        signature = model_signature(example, example_ranking(generator, evaluator, example))
        # The model takes a dict of arrays (a tensor-based signature, given explicitly): no type hints, no warning.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Add type hints to the `predict` method")
            info = mlflow.pyfunc.log_model(
                name="reranker",
                python_model=MODEL_CODE,
                artifacts={name: str(path) for name, path in files.items()},
                registered_model_name=cfg.model_name,
                code_paths=[str(PACKAGE)],  # the model's own code travels with it
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}"],
                signature=signature,
                input_example=example,
                metadata={k: v for k, v in metadata.items() if isinstance(v, (str, int, float, bool))},
            )
    version = str(info.registered_model_version)
    mlflow_client = client(params, root)
    for key, value in tags.items():
        mlflow_client.set_model_version_tag(cfg.model_name, version, key, value)
    return version


def input_example(generator: Path, n_candidates: int = EXAMPLE_CANDIDATES) -> dict[str, np.ndarray]:
    """One request of ``n_candidates`` candidates shaped as the generator's inputs (seeded values)."""
    hp = torch.load(generator, weights_only=True)["hparams"]
    rng = np.random.default_rng(0)
    return {
        "item_features": rng.normal(size=(1, n_candidates, hp["n_item_features"])).astype(np.float32),
        "context": rng.normal(size=(1, hp["n_context_features"])).astype(np.float32),
        "upstream_score": np.sort(rng.normal(size=(1, n_candidates)))[:, ::-1].astype(np.float32).copy(),
        "upstream_rank": np.arange(1, n_candidates + 1, dtype=np.float32)[None],  # as the data's slates hold it
        "pad_mask": np.zeros((1, n_candidates), dtype=bool),
    }


def model_signature(example: dict[str, np.ndarray], ranking: np.ndarray) -> ModelSignature:
    """Named input arrays with any number of requests and candidates (``-1``), features fixed; ``[B, K]`` out."""

    shapes = {
        "item_features": (-1, -1, example["item_features"].shape[-1]),
        "context": (-1, example["context"].shape[-1]),
    }
    inputs: list[ColSpec | TensorSpec] = [TensorSpec(a.dtype, shapes.get(n, (-1, -1)), n) for n, a in example.items()]
    output: list[ColSpec | TensorSpec] = [TensorSpec(ranking.dtype, (-1, ranking.shape[-1]))]  # [B, K] candidates
    return ModelSignature(Schema(inputs), Schema(output))


def example_ranking(generator: Path, evaluator: Path, example: dict[str, np.ndarray]) -> np.ndarray:
    """The greedy ranking of the example, for the signature's output (``[B, K]`` candidate indices)."""
    from dualrerank.models.components import SlateInputs
    from dualrerank.reranking import Reranker

    x = SlateInputs.from_batch({k: torch.as_tensor(v) for k, v in example.items()})
    return Reranker.from_files(generator, evaluator).rerank(x, 1).pages.numpy()


def promote(params: Params, version: str, root: Path = Path("."), alias: str | None = None) -> None:
    """Point the champion alias (or ``alias``: a live-loop arm's) at ``version`` (the one place that moves one)."""
    client(params, root).set_registered_model_alias(params.release.model_name, alias or params.release.alias, version)
