"""Stage ``finetune``: streaming RL fine-tuning of the distilled NAR student, LDRO and the GRPO baseline.

Both methods run on the same time-ordered stream (the latest ``steps · batch_size`` training requests, no
shuffling), with the same group size, steps and learning-rate grid. Each is kept at its best grid point, chosen
on the **validation** split by held-out-evaluator utility (``selection``; never by true utility). Test figures:
true utility (evaluation only), training- and held-out-evaluator utility, each paired against NAR+KD, so a gain
seen by the training evaluator alone (reward hacking) shows. With ``drift.enabled`` both methods then rerun at
their chosen rate on the same stream with one reward component's scale drifting mid-stream, for several seeds.
Outputs: ``student_ldro.ckpt``, ``student_grpo.ckpt``, ``finetune.json``, ``drift.json`` and the drift plot.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dualrerank.config import Params
from dualrerank.data.datamodule import TensorDictDataset, slate_tensors
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.data.targets import item_reward
from dualrerank.evaluation.finetune_report import drift_report, plot_drift, policy_figures, seed_figures, true_curve
from dualrerank.evaluation.policies import top_k
from dualrerank.evaluation.scoring import EvalSet, batched_scores
from dualrerank.models.components import SlateInputs
from dualrerank.models.evaluator import ListEvaluator
from dualrerank.models.io import load_as, save_model
from dualrerank.models.student import NARStudent
from dualrerank.models.teacher import ARTeacher
from dualrerank.paths import Paths
from dualrerank.rewards import RewardSpec, build_reward_spec, drift_factor
from dualrerank.sampling import masked_sequential_argmax
from dualrerank.serving.reranker import Judge
from dualrerank.stages.common import load_data, seed_module
from dualrerank.stages.distill import teacher_trajectories
from dualrerank.stages.evaluate import build_eval_set, finite_or_null
from dualrerank.tracking import nested_run, tracking_uri
from dualrerank.training.rl_module import METHODS, PolicyLitModule
from dualrerank.training.trainer import build_stream_trainer

SECTIONS = ("data", "finetune")


@dataclass
class Setup:
    """What every run shares: the networks, the reward spec, the stream and the probe/validation requests."""

    params: Params
    student: NARStudent
    teacher: ARTeacher
    evaluator: ListEvaluator
    spec: RewardSpec
    stream: dict[str, torch.Tensor]
    probe: dict[str, torch.Tensor]
    probe_eval: EvalSet  # the probe requests with the world, for the true-utility curve (evaluation only)
    val: dict[str, torch.Tensor]
    test: EvalSet


@dataclass
class PolicyRun:
    """One pass over the stream: the policy, its probe curves and its training time."""

    net: NARStudent
    curve: list[tuple[int, float]]  # normalised training reward (what the policy optimises)
    true_curve: list[tuple[int, float]] | None  # normalised true utility of the same greedy lists; None: no world
    seconds: float


def reward_spec(params: Params, meta: SlateMeta, evaluator_meta: dict[str, Any], viewport: int) -> RewardSpec:
    """The hybrid reward's spec: the business objective ``data.reward`` (+ its prior rules) and fine-tuning's own
    components, resolved against the data's item features (recorded in model files)."""
    cfg = params.finetune.reward
    return build_reward_spec(
        params.data.reward, meta.item_features, evaluator_meta, viewport, cfg.evaluator, cfg.posterior, cfg.slot_decay
    )


@torch.no_grad()
def stream_tensors(
    params: Params, meta: SlateMeta, train: Slates, student: NARStudent, teacher: ARTeacher
) -> dict[str, torch.Tensor]:
    """The time-ordered stream: the latest ``steps · B`` training requests with everything a step needs that
    does not depend on the policy (teacher lists and step logits, reference logits), computed once."""
    cfg = params.finetune
    n = min(len(train), cfg.steps * cfg.batch_size)
    part = train.subset(slice(len(train) - n, len(train)))  # splits are time-ordered already
    t = slate_tensors(part, {"item_reward": item_reward(part, meta, params.data.reward.item)})
    t["trajectory"], t["teacher_logits"] = teacher_trajectories(teacher, t)
    t["ref_logits"] = torch.cat([student(_inputs(t, s, s + 512)) for s in range(0, n, 512)])
    return t


def drift_scales(spec: RewardSpec, n: int, params: Params, drifting: bool) -> torch.Tensor:
    """``[n, R]`` reward-scale multipliers along the stream: ones, or the drifting component's ramp."""
    scales = torch.ones(n, len(spec.components))
    d = params.finetune.drift
    if drifting:
        if d.component not in spec.components:
            raise ValueError(f"finetune.drift.component {d.component!r} is not one of {spec.components}")
        position = (torch.arange(n, dtype=torch.float32) + 0.5) / n
        scales[:, spec.components.index(d.component)] = drift_factor(position, d.factor, d.start, d.ramp)
    return scales


def prepare(params: Params, paths: Paths) -> Setup:
    cfg = params.finetune
    meta, data = load_data(paths, ("train", "val", "test"))
    student, _ = load_as(paths.model("student"), NARStudent)
    teacher, _ = load_as(paths.model("teacher"), ARTeacher)
    evaluator, record = load_as(paths.judge, ListEvaluator)
    test = build_eval_set(params, paths, meta, data["test"])  # judged by paths.judge and paths.heldout_judge
    spec = reward_spec(params, meta, record["meta"], test.viewport)
    probe_slates = data["val"].subset(slice(0, cfg.probe_requests))
    probe_eval = build_eval_set(params, paths, meta, probe_slates)
    probe = slate_tensors(probe_slates, {"item_reward": probe_eval.item_reward})
    probe["upstream_page"] = top_k(-probe["upstream_rank"], probe["pad_mask"], meta.page_len)
    stream = stream_tensors(params, meta, data["train"], student, teacher)
    return Setup(params, student, teacher, evaluator, spec, stream, probe, probe_eval, slate_tensors(data["val"]), test)


def train_policy(setup: Setup, method: str, lr: float, seed: int, name: str) -> PolicyRun:
    """One pass over the stream from the distilled student. The probe's greedy lists are scored with the true
    utility afterwards, outside training (evaluation only: nothing the policy sees depends on it)."""
    params = setup.params
    seed_module(seed)
    net = copy.deepcopy(setup.student)
    teacher = setup.teacher if method == "ldro" and params.finetune.ldro.kl_reference == "teacher" else None
    module = PolicyLitModule(net, setup.evaluator, setup.spec, params.finetune, method, lr, teacher, setup.probe, seed)
    loader = torch.utils.data.DataLoader(TensorDictDataset(setup.stream), batch_size=params.finetune.batch_size)
    t0 = time.perf_counter()
    with nested_run(f"finetune/{name}"):
        trainer = build_stream_trainer(params.common, tracking_uri(params), params.finetune.probe_every)
        trainer.fit(module, train_dataloaders=loader)
    seconds = time.perf_counter() - t0
    steps = [step for step, _ in module.curve]
    truth = true_curve(steps, module.probe_pages, setup.probe["upstream_page"], setup.probe_eval)
    line = f"finetune: {name:<24} normalised reward {module.curve[0][1]:.4f} -> {module.curve[-1][1]:.4f}"
    if truth is not None:
        line += f", true utility {truth[0][1]:.4f} -> {truth[-1][1]:.4f}"
    print(f"{line} ({seconds:.1f} s)", flush=True)
    return PolicyRun(net.cpu().eval(), module.curve, truth, seconds)


@torch.no_grad()
def greedy_pages(net: NARStudent, tensors: dict[str, torch.Tensor], batch: int = 512) -> torch.Tensor:
    out = []
    for s in range(0, len(tensors["pad_mask"]), batch):
        x = _inputs(tensors, s, s + batch)
        out.append(masked_sequential_argmax(net(x), x.pad_mask))
    return torch.cat(out)


def _inputs(t: dict[str, torch.Tensor], a: int, b: int) -> SlateInputs:
    return SlateInputs.from_batch({k: v[a:b] for k, v in t.items()})


def lr_grid(setup: Setup, judges: dict[str, Judge]) -> tuple[dict[str, list[dict]], dict[str, tuple[dict, NARStudent]]]:
    """Every method at every grid point on the undrifted stream; per method the best ``(grid row, policy)`` by
    the selection rule (validation utility under the held-out, or the training, evaluator)."""
    cfg = setup.params.finetune
    key = "val_heldout_evaluator_utility" if cfg.selection == "heldout_val" else "val_evaluator_utility"
    setup.stream["reward_scale"] = drift_scales(setup.spec, len(setup.stream["pad_mask"]), setup.params, False)
    grid: dict[str, list[dict]] = {m: [] for m in METHODS}
    chosen: dict[str, tuple[dict, NARStudent]] = {}
    for method in METHODS:
        best = -float("inf")
        for lr in cfg.lr_grid:
            policy = train_policy(setup, method, lr, cfg.seed, f"{method}/lr={lr:g}")
            net, curve = policy.net, policy.curve
            pages = greedy_pages(net, setup.val)[:, None]
            row: dict[str, Any] = {"lr": lr, "seconds": policy.seconds, "curve": curve, "true_curve": policy.true_curve}
            row["final_normalised_reward"] = curve[-1][1]
            row |= {
                f"val_{j}_utility": float(batched_scores(judge, setup.val, pages).mean()) for j, judge in judges.items()
            }
            grid[method].append(row)
            if row[key] > best:
                best, chosen[method] = row[key], (row, net)
    return grid, chosen


def seed_runs(setup: Setup, chosen: dict[str, dict[str, Any]], pages: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Both methods at their chosen rate on the undrifted stream, once per ``test_seeds``; with the test lists
    of NAR+KD and of the released runs (``pages``: ``nar_kd``, ``nar_<method>``) the gains per seed and of the
    seed average."""
    cfg = setup.params.finetune
    setup.stream["reward_scale"] = drift_scales(setup.spec, len(setup.stream["pad_mask"]), setup.params, False)
    runs = {
        m: [pages[f"nar_{m}"]]
        + [
            greedy_pages(train_policy(setup, m, chosen[m]["lr"], seed, f"{m}/seed={seed}").net, setup.test.tensors)
            for seed in cfg.test_seeds
        ]
        for m in METHODS
    }
    return seed_figures(runs, setup.test, pages["nar_kd"], [cfg.seed, *cfg.test_seeds]) or {}


def drift_runs(setup: Setup, chosen: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Both methods at their chosen grid point's rate on the drifting stream, one run per seed."""
    cfg = setup.params.finetune
    n = len(setup.stream["pad_mask"])
    setup.stream["reward_scale"] = drift_scales(setup.spec, n, setup.params, drifting=True)
    runs = {
        m: [train_policy(setup, m, chosen[m]["lr"], seed, f"{m}/drift/seed={seed}") for seed in cfg.drift.seeds]
        for m in METHODS
    }
    undrifted = {m: row["curve"] for m, row in chosen.items()}
    measures = {"training_reward": ({m: [r.curve for r in rs] for m, rs in runs.items()}, undrifted)}
    truth = {m: [r.true_curve for r in rs if r.true_curve is not None] for m, rs in runs.items()}
    if all(len(t) == len(runs[m]) for m, t in truth.items()):
        measures["true_utility"] = (truth, {m: row["true_curve"] for m, row in chosen.items()})
    return drift_report(measures, cfg.drift, -(-n // cfg.batch_size))


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg = params.finetune
    t0 = time.perf_counter()
    setup = prepare(params, paths)
    n = len(setup.stream["pad_mask"])
    print(f"finetune: stream of {n} requests prepared in {time.perf_counter() - t0:.1f} s", flush=True)
    grid, chosen = lr_grid(setup, setup.test.judges or {})
    record = torch.load(paths.model("student"), weights_only=True)
    for method, (row, net) in chosen.items():
        extra = {"stage": "finetune", "method": method, "lr": row["lr"], "selection": cfg.selection}
        meta = {**record["meta"], **extra, "reward_spec": setup.spec.to_dict()}
        save_model(paths.model(f"student_{method}"), "student", record["hparams"], net, meta)

    pages = {"nar_kd": greedy_pages(setup.student, setup.test.tensors)}
    pages |= {f"nar_{m}": greedy_pages(net, setup.test.tensors) for m, (_, net) in chosen.items()}
    report: dict[str, Any] = {
        "stream": {
            "requests": n,
            "steps": -(-n // cfg.batch_size),
            "batch_size": cfg.batch_size,
            "group_size": cfg.group_size,
        },
        "reward_spec": setup.spec.to_dict(),
        "selection": f"{cfg.selection}: greedy lists' utility, {len(setup.val['pad_mask'])} validation requests",
        "grid": grid,
        "chosen_lr": {m: row["lr"] for m, (row, _) in chosen.items()},
        "test": policy_figures(pages, setup.test, baseline="nar_kd", contrasts=(("nar_ldro", "nar_grpo"),)),
    }
    figures: dict[str, Any] = {}
    for m in METHODS:
        gains = report["test"]["gains"][f"nar_{m}"]
        figures |= {f"{m}_test_{k}_gain": v["mean"] for k, v in gains.items() if v is not None}
    if cfg.test_seeds and setup.test.world is not None:  # without a world there is no true utility to spread
        rows = {m: row for m, (row, _) in chosen.items()}
        seeds = seed_runs(setup, rows, pages)
        report["test"]["seeds"] = seeds
        figures |= {f"{m}_test_true_utility_gain_seed_mean": seeds[m]["gain_seed_mean"]["mean"] for m in METHODS}
    if cfg.drift.enabled:
        drift = drift_runs(setup, {m: row for m, (row, _) in chosen.items()})
        plot = paths.plots / "ldro_vs_grpo_drift.png"
        plot_drift(drift, plot)
        _log_artifact(plot, "plots")
        _write(paths.report("drift.json"), drift)
        for name, measure in drift["measures"].items():
            prefix = "drift" if name == drift["measure"] else f"drift_{name}"
            for m in METHODS:
                summary = measure["summary"][m]
                figures |= {f"{m}_{prefix}_{k}": summary[k] for k in ("final_mean", "final_std", "drift_cost")}
            figures[f"{prefix}_ldro_minus_grpo_final"] = measure["ldro_minus_grpo_final"]["mean"]
            figures[f"{prefix}_grpo_over_ldro_final_variance"] = measure["grpo_over_ldro_final_variance"]["ratio"]
    _write(paths.report("finetune.json"), report)
    return {k: float(v) for k, v in figures.items()}


def _write(path: Path, obj: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(finite_or_null(obj), indent=2, allow_nan=False))
    _log_artifact(path, "reports")


def _log_artifact(path: Path, where: str) -> None:
    import mlflow

    if mlflow.active_run() is not None:
        mlflow.log_artifact(str(path), artifact_path=where)
