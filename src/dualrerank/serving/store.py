"""The packaged reranker in the BentoML model store: what goes in (``import_reranker``) and how the
service loads it back (``load_engine``).

A packaged model is a folder of three self-describing model files, ``generator.ckpt`` (the NAR student),
``evaluator.ckpt`` (the Best-of-N judge) and ``teacher.ckpt`` (the AR teacher, for the comparison
switch), plus metadata: the model spec the service validates requests against, the ``package``
settings it was packaged with, the source files and a SHA-256 of the files. The store is BentoML's
(``$BENTOML_HOME``, default ``~/bentoml``), outside the repository.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from dualrerank.config.base import ConfigError, build, replace
from dualrerank.config.serving import PackageConfig
from dualrerank.reranking import Reranker
from dualrerank.serving.adapter import ModelSpec
from dualrerank.serving.engine import RerankEngine

MODEL_NAME = "dualrerank-reranker"  # the BentoML model name; the service serves its latest version
LIVE_MODEL_NAME = "dualrerank-reranker-live"  # the live loop's versions: served by tag, never anyone's default
FILES = {"generator": "generator.ckpt", "judge": "evaluator.ckpt", "teacher": "teacher.ckpt"}
ENV_GENERATOR = "DUALRERANK_GENERATOR"  # nar | ar: start-up switch (the benchmark serves both)
ENV_BATCHING = "DUALRERANK_BATCHING"  # 1 | 0: start-up switch (the benchmark measures both)
ENV_BACKEND = "DUALRERANK_BACKEND"  # torch | onnx: start-up switch


def files_digest(files: Mapping[str, Path]) -> str:
    """SHA-256 over model files keyed by their packaged names, in a fixed order: names the exact weights."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode())
        h.update(files[name].read_bytes())
    return h.hexdigest()


def packaged_files(folder: Path) -> dict[str, Path]:
    return {name: folder / name for name in FILES.values()}


def import_reranker(
    sources: Mapping[str, Path], metadata: Mapping[str, Any], name: str = MODEL_NAME
) -> tuple[str, str]:
    """Copy the model files into a new version of ``name`` in the BentoML store: ``(tag, sha256)``."""
    import bentoml

    if set(sources) != set(FILES):
        raise ValueError(f"need model files for {sorted(FILES)}, got {sorted(sources)}")
    digest = files_digest({FILES[role]: path for role, path in sources.items()})
    meta = {**metadata, "sha256": digest}
    with bentoml.models.create(name, labels={"project": "dual-rerank"}, metadata=meta) as model:
        for role, src in sources.items():
            shutil.copy2(src, Path(model.path) / FILES[role])
    return str(model.tag), digest


def settings(metadata: Mapping[str, Any], env: Mapping[str, str]) -> PackageConfig:
    """The packaged ``package`` settings with the start-up switches from the environment applied."""
    packaged = {"backend": "torch", **metadata["package"]}  # models packaged before the setting existed ran torch
    cfg = build(PackageConfig, packaged, "packaged model's package settings")
    changes: dict[str, Any] = {}
    if ENV_GENERATOR in env:
        if env[ENV_GENERATOR] not in ("nar", "ar"):
            raise ConfigError(f"{ENV_GENERATOR} must be 'nar' or 'ar', got {env[ENV_GENERATOR]!r}")
        changes["generator"] = env[ENV_GENERATOR]
    if ENV_BATCHING in env:
        if env[ENV_BATCHING] not in ("0", "1"):
            raise ConfigError(f"{ENV_BATCHING} must be '0' or '1', got {env[ENV_BATCHING]!r}")
        changes["batching"] = env[ENV_BATCHING] == "1"
    if ENV_BACKEND in env:
        if env[ENV_BACKEND] not in ("torch", "onnx"):
            raise ConfigError(f"{ENV_BACKEND} must be 'torch' or 'onnx', got {env[ENV_BACKEND]!r}")
        changes["backend"] = env[ENV_BACKEND]
    return replace(cfg, "packaged model's package settings", **changes)


def load_engine(folder: Path, metadata: Mapping[str, Any], tag: str, env: Mapping[str, str]) -> RerankEngine:
    """Load a packaged model once at start-up; the version names the tag and the served weights."""
    cfg = settings(metadata, env)
    torch.set_num_threads(cfg.num_threads)
    digest = files_digest(packaged_files(folder))
    if digest != metadata.get("sha256"):
        raise RuntimeError(f"model files in {folder} do not match the packaged SHA-256; re-run `package`")
    if cfg.generator == "ar":
        reranker = Reranker.from_files(folder / FILES["teacher"])
    else:
        reranker = Reranker.from_files(
            folder / FILES["generator"], folder / FILES["judge"], temperature=cfg.temperature, seed=cfg.seed
        )
    spec = ModelSpec(**metadata["spec"])
    if cfg.backend == "onnx":
        reranker = reranker.exported(
            spec.typical_candidates, spec.default_n_samples, cfg.num_threads, spec.max_candidates
        )
    return RerankEngine(
        reranker, spec, model_version(tag, digest, metadata), cfg.batching, cfg.max_batch_size, cfg.max_wait_ms
    )


def model_version(tag: str, digest: str, metadata: Mapping[str, Any]) -> str:
    """``<BentoML tag>+<12 hex of the files' SHA-256>``, plus ``+mlflow-v<N>`` once the release step records
    the registered MLflow model version in the metadata (``mlflow_model_version``)."""
    version = f"{tag}+{digest[:12]}"
    registered = metadata.get("mlflow_model_version")
    return f"{version}+mlflow-v{registered}" if registered is not None else version
