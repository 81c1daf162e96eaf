"""Stage ``release``: register the fine-tuned NAR reranker, and promote it to champion only if it earned it.

Every run registers the candidate (generator ``student_ldro.ckpt``, else ``student.ckpt``; judge
``evaluator_explore.ckpt``, ``Paths.judge``) as a new version of ``release.model_name``, tagged with its figures,
the git commit and the data version. The ``champion`` alias moves to it only if (1) the evaluate stage's quality
gate passed and (2) it beats the current champion on held-out utility by more than ``release.min_improvement``.
Otherwise the old champion stays, and the reason is printed, written to ``data/reports/release.json`` and
tagged on the version. Not promoting is an outcome, not an error: the stage succeeds.

Held-out utility is the world's true utility when the data come from the world (an evaluation figure,
never a training signal), else the held-out evaluator's utility. The champion is **re-scored on the
current test requests** with the same code that scored the candidate, rather than compared by the figures
it was registered with: those came from an older test split (or an older held-out evaluator), so only a
re-score compares both on the same requests, by the same judge.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dualrerank import registry
from dualrerank.config import Params
from dualrerank.data.slates import SlateMeta, Slates
from dualrerank.evaluation.evalset import build_eval_set
from dualrerank.evaluation.policies import generative, run_policy
from dualrerank.evaluation.scoring import EvalSet, page_metrics
from dualrerank.models.io import load_model
from dualrerank.paths import Paths
from dualrerank.reranking import Reranker
from dualrerank.tracking import data_version, dvc_lock_hash, git_commit

SECTIONS = ("data", "world", "evaluate", "release")
# candidate generator file -> the policy name evaluate gives its greedy list (first found wins)
CANDIDATES = (("student_ldro", "nar_ldro"), ("student", "nar_kd"))


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(
    gate: dict[str, Any] | None, candidate: float | None, champion: float | None, margin: float, metric: str
) -> Decision:
    """Promote only a candidate that passed the gate and beats the champion (if any) by more than ``margin``."""
    if gate is None:
        return Decision(False, "metrics.json has no quality_gate: rerun evaluate with a version that writes it")
    if not gate.get("passed", False):
        checks = gate.get("checks", {}).items()
        failed = [f"{n} = {c.get('value')} (threshold {c.get('threshold')})" for n, c in checks if not c.get("passed")]
        return Decision(False, "quality gate failed: " + ("; ".join(failed) or "no check passed"))
    if candidate is None:
        return Decision(False, f"the candidate has no {metric} in metrics.json")
    if champion is None:
        return Decision(True, f"quality gate passed and there is no comparable champion ({metric} {candidate:.4f})")
    verdict = "beats" if candidate > champion + margin else "does not beat"
    message = f"{metric} {candidate:.4f} {verdict} the champion's {champion:.4f} by more than {margin}"
    return Decision(candidate > champion + margin, message)


def release_checks(
    gate: dict[str, Any] | None, candidate: float | None, champion: float | None, margin: float
) -> dict[str, dict[str, Any]]:
    """The gate's checks plus the one against the champion (none while there is no comparable champion)."""
    checks = dict((gate or {}).get("checks", {}))
    if champion is not None:
        gain = None if candidate is None else candidate - champion
        checks["candidate_gain_vs_champion"] = {
            "value": gain, "threshold": margin, "rule": ">", "passed": gain is not None and gain > margin,
        }  # fmt: skip
    return checks


def candidate_generator(paths: Paths) -> tuple[Path, str]:
    """The fine-tuned generator if there is one, else the distilled student; and its policy name prefix."""
    for file, prefix in CANDIDATES:
        if paths.model(file).exists():
            return paths.model(file), prefix
    raise FileNotFoundError(f"no generator to release: none of {[f for f, _ in CANDIDATES]} in {paths.models}")


def run(params: Params, paths: Paths) -> dict[str, float]:
    cfg, ev_cfg = params.release, params.evaluate
    n_samples = ev_cfg.gate.candidate_n_samples
    if n_samples not in ev_cfg.bon_sizes:
        raise ValueError(f"evaluate.gate.candidate_n_samples={n_samples} is not one of evaluate.bon_sizes")
    report = json.loads(paths.report("metrics.json").read_text())
    generator, prefix = candidate_generator(paths)
    policy = f"{prefix}_bon{ev_cfg.gate.candidate_n_samples}"
    if policy not in report["policies"]:
        raise KeyError(f"metrics.json has no row {policy!r}: evaluate did not score the served policy")
    meta = SlateMeta.load(paths.meta)
    ev = build_eval_set(params, paths, meta, Slates.load(paths.split("test")))
    metric = "heldout_evaluator_utility"
    candidate = report["policies"][policy].get(metric)

    previous = registry.champion(params, paths.root)
    champion_value, note = None, "no champion yet"
    if previous is not None:
        champion_value, note = _rescore_champion(params, paths, str(previous.version), ev, metric)
    decision = decide(report.get("quality_gate"), candidate, champion_value, cfg.min_improvement, metric)

    lineage = {"git_commit": git_commit(paths.root), "dvc_lock_md5": dvc_lock_hash(paths.root)}
    lineage["data_version"] = data_version(paths.root)
    metadata = {**_served_policy(params, generator, meta, ev), "policy": policy, "metric": metric, **lineage}
    metadata["metrics"] = report["policies"][policy]
    tags = {**lineage, "metric": metric, "candidate_value": str(candidate), "policy": policy}
    tags.update(promoted=str(decision.promote).lower(), reason=decision.reason, champion_before=note)
    tags["champion_value"] = str(champion_value)
    version = registry.register(params, generator, paths.judge, metadata, tags, paths.root)
    if decision.promote:
        registry.promote(params, version, paths.root)
    champion_now = version if decision.promote else (str(previous.version) if previous is not None else None)
    outcome = {
        "promoted": decision.promote,
        "reason": decision.reason,
        "registered_version": version,
        "champion_version": champion_now,
        "previous_champion": note,
        "metric": metric,
        "candidate": candidate,
        "champion": champion_value,
        "gate_passed": bool((report.get("quality_gate") or {}).get("passed", False)),
        "checks": release_checks(report.get("quality_gate"), candidate, champion_value, cfg.min_improvement),
        **lineage,
    }
    paths.reports.mkdir(parents=True, exist_ok=True)
    paths.report("release.json").write_text(json.dumps(outcome, indent=2))
    verb = f"promoted version {version} to {cfg.alias}" if decision.promote else f"kept {cfg.alias} ({note})"
    print(f"release: registered {cfg.model_name} version {version}; {verb}: {decision.reason}", flush=True)
    return {"promoted": float(decision.promote), "registered_version": float(version)}


def _served_policy(params: Params, generator: Path, meta: SlateMeta, ev: EvalSet) -> dict[str, Any]:
    """What serving needs to rebuild the policy and check requests: Best-of-N settings and input shapes."""
    hparams = load_model(generator)[1]["hparams"]
    return {
        "n_samples": params.evaluate.gate.candidate_n_samples,
        "temperature": params.evaluate.bon_temperature,
        "seed": params.evaluate.seed,
        "page_len": hparams["page_len"],
        "n_item_features": hparams["n_item_features"],
        "n_context_features": hparams["n_context_features"],
        "max_candidates": meta.max_candidates,
        "viewport": ev.viewport,
        "generator_file": generator.name,
    }


def _rescore_champion(params: Params, paths: Paths, version: str, ev: EvalSet, metric: str) -> tuple[float | None, str]:
    """The champion's served policy on the current test requests, scored like the candidate was."""
    with tempfile.TemporaryDirectory() as tmp:
        files = registry.download(params, version, Path(tmp), paths.root)
        meta = json.loads(files["metadata"].read_text())
        current = {
            "page_len": ev.page_len,
            "n_item_features": int(ev.tensors["item_features"].shape[-1]),
            "n_context_features": int(ev.tensors["context"].shape[-1]),
        }
        if any(meta.get(k) != v for k, v in current.items()):
            return None, f"champion version {version} cannot rerank the current data (its input shapes differ)"
        reranker = Reranker.from_files(
            files["generator"], files["evaluator"], temperature=meta["temperature"], seed=params.evaluate.seed
        )
        policy = generative("champion", reranker, int(meta["n_samples"]))
        row = page_metrics(run_policy(policy, ev.tensors, params.evaluate.batch_size), ev)
    value = row.get(metric)
    return (float(value) if isinstance(value, (int, float)) else None), f"champion version {version}"
