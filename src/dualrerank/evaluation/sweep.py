"""Where does generative reranking pay off? Regenerate small worlds with every dependency strength
scaled by ``s`` (0 = none), run the pipeline on each, and compare the headroom over score-and-sort
with what the policies capture of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from dualrerank.config import Params, merge, params_from_dict
from dualrerank.config.sweep import SweepConfig

MODEL_SECTIONS = ("train_teacher", "train_nar", "distill", "train_evaluator", "train_pointwise")


def sweep_params(params: Params, strength: float) -> Params:
    """``params`` with the world shrunk, epochs capped and dependency strengths multiplied by ``strength``."""
    cfg, w = params.sweep, params.world
    raw = params.model_dump()
    overlay: dict[str, Any] = {
        "common": {"progress": False},
        "world": {
            "n_train_requests": cfg.n_train_requests, "n_val_requests": cfg.n_val_requests,
            "n_test_requests": cfg.n_test_requests, "redundancy": w.redundancy * strength,
            "context": w.context * strength, "intent_coverage": min(1.0, w.intent_coverage * strength),
        },
        "evaluate": {"latency_requests": 10, "serving_batch_calls": 2, "ecg_requests": 50, "diagnostics_requests": 200},
    }  # fmt: skip
    for section in MODEL_SECTIONS:
        epochs = min(cfg.max_epochs, raw[section]["optim"]["max_epochs"])
        overlay[section] = {"optim": {"max_epochs": epochs}}
    return params_from_dict(merge(raw, overlay))


def run_sweep(params: Params, root: Path) -> dict[str, Any]:
    """Run ``sweep.stages`` in ``data/sweep/s<strength>/`` for every strength; return the collected figures."""
    from dualrerank.stages.runner import execute

    cfg: SweepConfig = params.sweep
    results = []
    for s in cfg.strengths:
        sub = root / "data" / "sweep" / f"s{s:g}"
        sub.mkdir(parents=True, exist_ok=True)
        sp = sweep_params(params, s)
        (sub / "params.yaml").write_text(yaml.safe_dump(sp.model_dump(mode="json"), sort_keys=False))
        print(f"sweep: strength {s:g} in {sub}", flush=True)
        for stage in cfg.stages:
            execute(stage, params=sp, root=sub, track=False)
        results.append(collect(s, sub))
    return {"strengths": list(cfg.strengths), "results": results}


def collect(strength: float, sub: Path) -> dict[str, Any]:
    world = json.loads((sub / "data/reports/world.json").read_text())
    report = json.loads((sub / "data/reports/metrics.json").read_text())
    rows = report["policies"]
    return {
        "strength": strength,
        "oracle": report["oracle"]["utility"],
        "item_value_sort": world["utility_item_value_sort"],
        "true_utility": {n: r["true_utility"] for n, r in rows.items()},
        "headroom_captured": {n: r["headroom_captured"] for n, r in rows.items()},
    }
