"""The ``release`` stage against a real MLflow registry (the tiny project's sqlite store): every run registers
a version with its lineage; the champion alias moves only past the quality gate and a re-scored champion."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
import yaml

from dualrerank import registry
from dualrerank.config import load_params
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.evaluation.evalset import build_eval_set
from dualrerank.evaluation.policies import generative, run_policy
from dualrerank.evaluation.scoring import page_metrics
from dualrerank.models.components import SlateInputs
from dualrerank.models.io import load_model
from dualrerank.paths import Paths
from dualrerank.reranking import Reranker
from dualrerank.stages.release import candidate_generator
from dualrerank.stages.runner import execute
from dualrerank.tracking import tracking_uri, use_experiment

pytestmark = pytest.mark.integration
PASSED = {"passed": True, "checks": {"beats_upstream": {"value": 0.1, "threshold": 0.0, "passed": True}}}
FAILED = {"passed": False, "checks": {"beats_upstream": {"value": -0.1, "threshold": 0.0, "passed": False}}}


def release_with_gate(root: Path, gate: dict) -> dict:
    report = json.loads((root / "data/reports/metrics.json").read_text())
    report["quality_gate"] = gate
    (root / "data/reports/metrics.json").write_text(json.dumps(report))
    execute("release", root=root)
    return json.loads((root / "data/reports/release.json").read_text())


def champion_version(root: Path) -> str | None:
    version = registry.champion(load_params(root / "params.yaml"), root)
    return None if version is None else str(version.version)


def test_every_release_is_registered_with_its_lineage(trained_project, tmp_path):
    root, _ = trained_project
    params = load_params(root / "params.yaml")
    outcome = json.loads((root / "data/reports/release.json").read_text())
    assert outcome["registered_version"] == "1" and not outcome["promoted"] and outcome["champion_version"] is None
    client = registry.client(params, root)
    version = client.get_model_version(params.release.model_name, "1")
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    processed = next(o["md5"] for o in lock["stages"]["validate"]["outs"] if o["path"] == "data/processed")
    assert version.tags["data_version"] == processed
    reason = version.tags["reason"]
    assert version.tags["promoted"] == "false" and reason.startswith("quality gate failed")
    assert "candidate_gain_vs_score_and_sort" in reason
    run = client.get_run(version.run_id)
    assert run.info.run_name == "release"
    assert run.data.tags["dvc_lock_md5"] == version.tags["dvc_lock_md5"] and len(run.data.tags["dvc_lock_md5"]) == 32
    assert run.data.tags["git_commit"] == version.tags["git_commit"]
    # the judge registered is the evaluator retrained with the on-policy round, not the logged one
    got = registry.download(params, "1", tmp_path, root)
    paths = Paths(root)
    assert got["evaluator"].read_bytes() == paths.judge.read_bytes() != paths.model("evaluator").read_bytes()


def test_download_reads_this_projects_registry_whatever_mlflow_points_at(trained_project, tmp_path):
    root, _ = trained_project
    params = load_params(root / "params.yaml")
    before_uri, before_env = mlflow.get_tracking_uri(), os.environ.get("MLFLOW_TRACKING_URI")
    use_experiment(params, tmp_path / "other")  # another project's run points MLflow process-wide at its store
    try:
        got = registry.download(params, "1", tmp_path / "download", root)
    finally:
        mlflow.set_tracking_uri(before_uri)  # which exports it: put back the environment as it was
        if before_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = before_env
    assert got["evaluator"].read_bytes() == Paths(root).judge.read_bytes()


def test_the_alias_moves_only_past_the_gate_and_the_champion(project_copy):
    first = release_with_gate(project_copy, PASSED)
    assert first["promoted"] and first["champion_version"] == first["registered_version"] == "2"
    assert champion_version(project_copy) == "2"

    again = release_with_gate(project_copy, PASSED)  # the same model again: a tie is not a win
    assert not again["promoted"] and "does not beat" in again["reason"]
    assert again["champion"] == again["candidate"]  # the re-scored champion reproduces evaluate's figure exactly
    assert champion_version(project_copy) == "2" and again["champion_version"] == "2"

    failed = release_with_gate(project_copy, FAILED)
    assert not failed["promoted"] and failed["reason"] == "quality gate failed: beats_upstream = -0.1 (threshold 0.0)"
    assert champion_version(project_copy) == "2" and failed["registered_version"] == "4"


def test_a_different_champion_is_rescored_on_the_current_test_requests(project_copy):
    root, params, paths = project_copy, load_params(project_copy / "params.yaml"), Paths(project_copy)
    record = load_model(paths.model("student"))[1]  # an older release: the distilled student, the logged evaluator
    meta = {"n_samples": 4, "temperature": 1.0, "seed": params.evaluate.seed}
    meta.update({k: record["hparams"][k] for k in ("page_len", "n_item_features", "n_context_features")})
    version = registry.register(params, paths.model("student"), paths.model("evaluator"), meta, {}, root)
    registry.promote(params, version, root)

    outcome = release_with_gate(root, PASSED)

    ev = build_eval_set(params, paths, SlateMeta.load(paths.meta), Slates.load(paths.split("test")))
    old = (paths.model("student"), paths.model("evaluator"))
    rr = Reranker.from_files(*old, temperature=1.0, seed=params.evaluate.seed)
    expected = page_metrics(run_policy(generative("old", rr, 4), ev.tensors, params.evaluate.batch_size), ev)
    # judged as a deployment would: by the held-out evaluator on the same requests, never by the world
    assert outcome["metric"] == "heldout_evaluator_utility"
    assert outcome["champion"] == expected["heldout_evaluator_utility"] != outcome["candidate"]
    assert outcome["promoted"] == (outcome["candidate"] > outcome["champion"])
    assert champion_version(root) == (outcome["registered_version"] if outcome["promoted"] else version)


def test_the_champion_loads_back_as_a_pyfunc_model_that_reranks(project_copy):
    release_with_gate(project_copy, PASSED)
    params, paths = load_params(project_copy / "params.yaml"), Paths(project_copy)
    mlflow.set_tracking_uri(tracking_uri(params, project_copy))
    model = mlflow.pyfunc.load_model(f"models:/{params.release.model_name}@{params.release.alias}")
    test = Slates.load(paths.split("test"))
    fields = ("item_features", "context", "upstream_score", "upstream_rank", "pad_mask")
    inputs = {name: getattr(test, name)[:6] for name in fields}

    pages = model.predict(inputs)

    generator, _ = candidate_generator(paths)  # the fine-tuned student (student_ldro.ckpt) the release registered
    direct = Reranker.from_files(generator, paths.judge, seed=params.evaluate.seed)
    x = SlateInputs.from_batch({k: torch.as_tensor(np.asarray(v)) for k, v in inputs.items()})
    assert np.array_equal(pages, direct.rerank(x, params.evaluate.gate.candidate_n_samples).pages.numpy())
    assert pages.shape == (6, test.logged_page.shape[1])
    # what a fresh environment needs: the signature, an input example, the package's code, the requirements
    info = mlflow.models.get_model_info(f"models:/{params.release.model_name}@{params.release.alias}")
    assert set(info.signature.inputs.input_names()) == set(fields)
    local = Path(mlflow.artifacts.download_artifacts(info.model_uri))
    assert (local / "code" / "dualrerank" / "reranking" / "reranker.py").exists()
    assert (local / "input_example.json").exists() or any(local.glob("input_example*"))
    assert any(line.startswith("torch==") for line in (local / "requirements.txt").read_text().splitlines())


def test_package_builds_from_the_champion_and_packages_nothing_without_one(project_copy):
    edit = yaml.safe_load((project_copy / "params.yaml").read_text())
    edit["package"]["source"] = "champion"
    (project_copy / "params.yaml").write_text(yaml.safe_dump(edit))
    execute("package", root=project_copy, track=False)  # the pipeline's own release was not promoted: an outcome
    record = json.loads((project_copy / "data/models/package.json").read_text())
    assert record["packaged"] is False and "no 'champion' version" in record["reason"]

    promoted = release_with_gate(project_copy, PASSED)
    execute("package", root=project_copy, track=False)
    record = json.loads((project_copy / "data/models/package.json").read_text())
    version = f"dual-rerank/{promoted['champion_version']}"
    assert record["registry_version"] == version
    assert record["sources"]["generator"] == record["sources"]["judge"] == f"models:/{version}"
