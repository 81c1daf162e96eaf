"""``package``: import the released reranker into the BentoML model store and build the Bento (METHOD §6).

Released model: the LDRO-tuned student (``student_ldro.ckpt``) when it exists, else the distilled
``student.ckpt``, judged by ``evaluator.ckpt``, with ``teacher.ckpt`` for the AR comparison switch.
(Once orchestration registers a champion in MLflow, its ``release`` step decides which files these are.)
Writes ``data/models/package.json``: the BentoML model tag, the SHA-256 of the files, the Bento tag.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from dualrerank.config import Params
from dualrerank.models.io import load_model
from dualrerank.paths import Paths
from dualrerank.serving.server import code_env
from dualrerank.serving.store import MODEL_NAME, import_reranker

SECTIONS = ("package", "world", "evaluate")
GENERATORS = ("student_ldro", "student")  # first that exists is released
log = logging.getLogger(__name__)


def released_files(paths: Paths) -> dict[str, Path]:
    """The files to package by role (``generator``, ``judge``, ``teacher``); a clear error if one is missing."""
    generator = next((paths.model(n) for n in GENERATORS if paths.model(n).exists()), None)
    if generator is None:
        raise FileNotFoundError(f"no generator to package: none of {[str(paths.model(n)) for n in GENERATORS]}")
    files = {"generator": generator, "judge": paths.model("evaluator"), "teacher": paths.model("teacher")}
    for role, path in files.items():
        if not path.exists():
            raise FileNotFoundError(f"cannot package: {role} model {path} is missing")
    return files


def model_spec(files: dict[str, Path], params: Params) -> dict[str, int]:
    """The request shape the service checks, from the generator's own hyper-parameters."""
    records = {role: load_model(path)[1] for role, path in files.items()}
    expected = {"generator": "student", "judge": "evaluator", "teacher": "teacher"}
    for role, kind in expected.items():
        if records[role]["kind"] != kind:
            raise ValueError(f"{files[role]} holds a {records[role]['kind']} model, expected a {kind}")
    hp = records["generator"]["hparams"]
    for role in ("judge", "teacher"):
        other = records[role]["hparams"]
        if (other["n_item_features"], other["n_context_features"]) != (hp["n_item_features"], hp["n_context_features"]):
            raise ValueError(f"{files[role]} was trained on other features than {files['generator']}")
    cfg = params.package
    if not 1 <= params.evaluate.gate.candidate_n_samples <= cfg.max_n_samples:
        raise ValueError("evaluate.gate.candidate_n_samples (the served default N) exceeds package.max_n_samples")
    return {
        "n_item_features": hp["n_item_features"],
        "n_context_features": hp["n_context_features"],
        "page_len": hp["page_len"],
        "viewport": params.world.viewport,
        "max_candidates": cfg.max_candidates,
        "default_n_samples": params.evaluate.gate.candidate_n_samples,  # the released (gated) Best-of-N size
        "max_n_samples": cfg.max_n_samples,
    }


def build_bento(root: Path) -> str:
    """``bentoml build`` at the project root, importing this very code; returns the Bento tag."""
    bentofile = root / "bentofile.yaml"
    if not bentofile.exists():
        raise FileNotFoundError(f"package.build is true but {bentofile} does not exist")
    cmd = [sys.executable, "-m", "bentoml", "build", "-f", str(bentofile), "-o", "tag", str(root)]
    out = subprocess.run(cmd, cwd=root, env=code_env(), capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"bentoml build failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1].removeprefix("__tag__:")


def run(params: Params, paths: Paths) -> dict[str, Any]:
    files = released_files(paths)
    metadata = {
        "spec": model_spec(files, params),
        "package": dataclasses.asdict(params.package),
        "sources": {role: str(path) for role, path in files.items()},
    }  # the orchestration's release step will add the MLflow model version of the champion here
    tag, digest = import_reranker(files, metadata)
    log.info("imported %s (sha256 %s) into the BentoML store", tag, digest[:12])
    bento = build_bento(paths.root) if params.package.build else None
    record = {"model_name": MODEL_NAME, "model_tag": tag, "sha256": digest, "bento_tag": bento, **metadata}
    out = paths.models / "package.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    return {"model_tag": tag, "bento_tag": bento, "sha256": digest}
