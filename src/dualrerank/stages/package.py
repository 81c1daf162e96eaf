"""``package``: import the released reranker into the BentoML model store and build the Bento (docs/method.md).

Packaged model (``package.source``): ``champion`` (default), the generator and judge of the MLflow registry's
champion, the version the ``release`` step promoted past the quality gate. While the registry has no champion
(no release has passed the gate yet) nothing is packaged: ``package.json`` says so and why, the stage succeeds,
and whatever the BentoML store served before stays served; a model that never passed the gate is never
packaged. ``local``, the files in
``data/models`` (the LDRO-tuned ``student_ldro.ckpt`` if present, else ``student.ckpt``, judged by
``evaluator_explore.ckpt``, ``Paths.judge``), for development. ``teacher.ckpt`` rides along for the AR comparison
switch.
Writes ``data/models/package.json``: the BentoML model tag, the registry version, the SHA-256 of the files,
the Bento tag.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from dualrerank import registry
from dualrerank.childenv import code_env
from dualrerank.config import Params
from dualrerank.models.io import load_model
from dualrerank.paths import Paths
from dualrerank.serving.store import MODEL_NAME, import_reranker

SECTIONS = ("package", "world", "evaluate", "release")
GENERATORS = ("student_ldro", "student")  # first that exists is released
log = logging.getLogger(__name__)


def released_files(paths: Paths) -> dict[str, Path]:
    """The local files to package by role (``generator``, ``judge``, ``teacher``); a clear error if one is missing."""
    generator = next((paths.model(n) for n in GENERATORS if paths.model(n).exists()), None)
    if generator is None:
        raise FileNotFoundError(f"no generator to package: none of {[str(paths.model(n)) for n in GENERATORS]}")
    files = {"generator": generator, "judge": paths.judge, "teacher": paths.model("teacher")}
    return checked(files)


def no_champion_reason(params: Params, paths: Paths) -> str:
    return (
        f"no {params.release.alias!r} version of {params.release.model_name!r} in the MLflow registry: the release "
        f"step promotes one only past the quality gate (see {paths.report('release.json')}); nothing was packaged, "
        "and the BentoML store keeps serving what it served before (package.source: local packages data/models)"
    )


def champion_files(params: Params, paths: Paths, dest: Path) -> tuple[dict[str, Path], str]:
    """The registry champion's generator and judge (downloaded into ``dest``) and the local teacher; its version."""
    version = registry.champion(params, paths.root)
    if version is None:
        raise LookupError(no_champion_reason(params, paths))
    got = registry.download(params, str(version.version), dest, paths.root)
    files = {"generator": got["generator"], "judge": got["evaluator"], "teacher": paths.model("teacher")}
    return checked(files), f"{params.release.model_name}/{version.version}"


def checked(files: dict[str, Path]) -> dict[str, Path]:
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
    out = paths.models / "package.json"
    if params.package.source == "champion" and registry.champion(params, paths.root) is None:
        reason = no_champion_reason(params, paths)
        print(f"package: {reason}", flush=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"packaged": False, "reason": reason}, indent=2) + "\n")
        return {"packaged": False}
    with tempfile.TemporaryDirectory() as tmp:
        files, version = (
            champion_files(params, paths, Path(tmp))
            if params.package.source == "champion"
            else (released_files(paths), None)
        )
        metadata = {
            "spec": model_spec(files, params),
            "package": params.package.model_dump(),
            "registry_version": version or "none (package.source: local)",
            "sources": {  # the champion's files come from the registry (downloaded to a temporary folder)
                role: f"models:/{version}" if version and role != "teacher" else str(path)
                for role, path in files.items()
            },
        }
        tag, digest = import_reranker(files, metadata)
    log.info("imported %s (sha256 %s) into the BentoML store", tag, digest[:12])
    bento = build_bento(paths.root) if params.package.build else None
    record = {
        "packaged": True,
        "model_name": MODEL_NAME,
        "model_tag": tag,
        "sha256": digest,
        "bento_tag": bento,
        **metadata,
    }
    log.info("packaged %s", version or "the local models (package.source: local)")
    out.write_text(json.dumps(record, indent=2) + "\n")
    return {"packaged": True, "model_tag": tag, "bento_tag": bento, "sha256": digest, "registry_version": version}
