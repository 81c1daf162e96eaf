"""Stage ``finetune``: one LDRO run over the newest training requests, from the chosen starting policy.

``finetune.init`` chooses where the run starts: ``distilled`` (this pipeline's distilled student), ``champion``
(the registry's served version: what the streaming deployment uses) or ``latest`` (the newest registered
version). Without such a version in the registry, the run starts from the distilled student and says so. The
starting policy is also the KL reference, so the run moves away from what is served only as far as the
reward pays for. The learning rate is ``finetune.lr``; the grid that chose it is the benchmark's.

Outputs: ``student_ldro.ckpt`` (the candidate ``release`` judges) and ``finetune.json``: where the run started,
the stream, the probe curve and both evaluators' validation utility of the greedy lists before and after.
No figure here is computed with the world's truth.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import torch

from dualrerank import registry
from dualrerank.config import Params
from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.data.targets import item_reward
from dualrerank.evaluation.evalset import finite_or_null, layout_viewport
from dualrerank.evaluation.policies import top_k
from dualrerank.evaluation.scoring import batched_scores
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.io import load_as, save_model
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.paths import Paths
from dualrerank.reranking import Judge
from dualrerank.stages.common import load_data
from dualrerank.tracking import tracking_uri
from dualrerank.training.finetuning import greedy_pages, reward_spec, stream_tensors, train_policy

SECTIONS = ("data", "finetune", "release")


def starting_policy(params: Params, paths: Paths, meta: SlateMeta, tmp: Path) -> tuple[Path, str]:
    """The generator file the run starts from and a sentence naming it (registry version, or the fallback)."""
    init, distilled = params.finetune.init, paths.model("student")
    if init == "distilled":
        return distilled, "distilled student"
    version = registry.champion(params, paths.root) if init == "champion" else registry.latest(params, paths.root)
    if version is None:
        return distilled, f"distilled student (finetune.init={init}, but the registry has no {init} version yet)"
    files = registry.download(params, str(version.version), tmp, paths.root)
    hp = torch.load(files["generator"], weights_only=True)["hparams"]
    shapes = {"n_item_features": len(meta.item_features), "n_context_features": len(meta.context_features)}
    if any(hp.get(k) != v for k, v in shapes.items()) or hp.get("page_len") != meta.page_len:
        return distilled, f"distilled student ({init} version {version.version} cannot rerank this data's shapes)"
    return files["generator"], f"{init} version {version.version}"


def probe_tensors(params: Params, paths: Paths, meta: SlateMeta, val: Slates) -> dict[str, torch.Tensor]:
    """The validation requests of the probe curve, with their upstream lists (the curve's denominator)."""
    part = val.subset(slice(0, params.finetune.probe_requests))
    t = slate_tensors(part, {"item_reward": item_reward(part, meta, params.data.reward.item)})
    t["upstream_page"] = top_k(-t["upstream_rank"], t["pad_mask"], meta.page_len)
    return t


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg = params.finetune
    meta, data = load_data(paths, ("train", "val"))
    teacher, _ = load_as(paths.model("teacher"), ARTeacher)
    evaluator, judge_record = load_as(paths.judge, ListEvaluator)
    spec = reward_spec(params.data.reward, cfg, meta, judge_record["meta"], layout_viewport(paths, meta))
    with tempfile.TemporaryDirectory() as tmp:
        start_file, started_from = starting_policy(params, paths, meta, Path(tmp))
        start, record = load_as(start_file, NARStudent)
    print(f"finetune: LDRO at lr {cfg.lr:g} from the {started_from}", flush=True)
    stream = stream_tensors(params.data.reward, cfg.window, meta, data["train"], start, teacher)
    n = len(stream["pad_mask"])
    probe = probe_tensors(params, paths, meta, data["val"])
    policy = train_policy(
        start, evaluator, spec, cfg, params.common, stream, "ldro", cfg.lr, cfg.seed,
        teacher=teacher, probe=probe, tracking=tracking_uri(params, paths.root),
    )  # fmt: skip
    meta_out = {**record["meta"], "stage": "finetune", "method": "ldro", "lr": cfg.lr, "init": cfg.init}
    meta_out |= {"started_from": started_from, "reward_spec": spec.to_dict()}
    save_model(paths.model("student_ldro"), "student", record["hparams"], policy.net, meta_out)

    val = slate_tensors(data["val"])
    judges = {"evaluator": Judge.from_file(paths.judge), "heldout_evaluator": Judge.from_file(paths.heldout_judge)}
    before, after = greedy_pages(start, val)[:, None], greedy_pages(policy.net, val)[:, None]
    utility = {
        name: {f"{j}_utility": float(batched_scores(judge, val, pages).mean()) for j, judge in judges.items()}
        for name, pages in (("start", before), ("finetuned", after))
    }
    report: dict[str, Any] = {
        "method": "ldro",
        "init": cfg.init,
        "started_from": started_from,
        "lr": cfg.lr,
        "stream": {"requests": n, "steps": -(-n // cfg.batch_size), "batch_size": cfg.batch_size},
        "seconds": policy.seconds,
        "probe_curve": policy.curve,
        "validation": utility,
        "reward_spec": spec.to_dict(),
    }
    paths.reports.mkdir(parents=True, exist_ok=True)
    paths.report("finetune.json").write_text(json.dumps(finite_or_null(report), indent=2, allow_nan=False))
    _tag_run(started_from, cfg.init)
    gain = utility["finetuned"]["heldout_evaluator_utility"] - utility["start"]["heldout_evaluator_utility"]
    print(f"finetune: {n} requests in {policy.seconds:.1f} s; held-out evaluator gain on validation {gain:+.4f}")
    return {"train_seconds": policy.seconds, "val_heldout_evaluator_gain": gain}


def _tag_run(started_from: str, init: str) -> None:
    """The stage's MLflow run names the policy it started from (a registry version, or the distilled student)."""
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.set_tags({"started_from": started_from, "finetune.init": init})
