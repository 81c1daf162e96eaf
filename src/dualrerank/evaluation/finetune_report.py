"""Figures of the ``finetune`` stage: paired test comparisons against NAR+KD (with the reward-hacking gap) and
the LDRO-vs-GRPO normalised-reward curves on the drifting stream (summary and plot)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from dualrerank import metrics
from dualrerank.config.benchmark import DriftConfig
from dualrerank.evaluation.scoring import EvalSet, batched_scores, response_utilities, true_utilities
from dualrerank.reranking import Judge

MEASURES = ("true_utility", "evaluator_utility", "heldout_evaluator_utility")
TAIL = 0.2  # "final" = mean over the probes of the last 20% of the stream
CURVE_MEASURES = {
    "true_utility": "greedy list's true utility / the upstream list's, on the validation probes (evaluation only)",
    "training_reward": "greedy list's hybrid reward (training evaluator + rules, intended weights) / the upstream "
    "list's, on the validation probes",
}
CURVE_LABELS = {
    "true_utility": "normalised true utility (greedy / upstream)",
    "training_reward": "normalised reward (greedy / upstream)",
}


def policy_figures(
    pages: dict[str, Tensor], ev: EvalSet, baseline: str, contrasts: tuple[tuple[str, str], ...] = ()
) -> dict[str, Any]:
    """Per policy (pages ``[R, K]``): mean true utility (null without a world) and training / held-out evaluator
    utility; per other policy the paired gain over ``baseline`` on each measure (mean and 95% interval) and
    the reward-hacking gap (training-evaluator gain minus held-out-evaluator gain and minus true gain); and the
    paired difference ``a - b`` of every pair in ``contrasts``."""
    per_request: dict[str, dict[str, np.ndarray]] = {}
    for name, p in pages.items():
        row = {
            f"{j}_utility": batched_scores(judge, ev.tensors, p[:, None])[:, 0]
            for j, judge in (ev.judges or {}).items()
        }
        u = true_utilities(p, ev)
        if u is not None:
            row["true_utility"] = u
        per_request[name] = row
    policies: dict[str, dict[str, Any]] = {}
    for name, row in per_request.items():
        policies[name] = {m: float(row[m].mean()) if m in row else None for m in MEASURES}
        if "true_utility" in row:
            mean, half = metrics.mean_ci95(row["true_utility"])
            policies[name]["true_utility_ci95"] = [mean - half, mean + half]
    gains, gap = {}, {}
    base = per_request[baseline]
    for name, row in per_request.items():
        if name == baseline:
            continue
        gains[name] = {m: metrics.paired_difference(row[m], base[m]) if m in row else None for m in MEASURES}
        g = {m: v["mean"] for m, v in gains[name].items() if v is not None}
        gap[name] = {
            "training_minus_heldout_evaluator_gain": _diff(g, "evaluator_utility", "heldout_evaluator_utility"),
            "training_evaluator_minus_true_gain": _diff(g, "evaluator_utility", "true_utility"),
            "heldout_evaluator_minus_true_gain": _diff(g, "heldout_evaluator_utility", "true_utility"),
        }
    paired = {
        f"{a}_minus_{b}": {m: metrics.paired_difference(per_request[a][m], per_request[b][m]) for m in per_request[a]}
        for a, b in contrasts
    }
    by_response = gains_by_response(pages, ev, baseline) if "evaluator" in (ev.judges or {}) else {}
    return {
        "baseline": baseline,
        "policies": policies,
        "gains": gains,
        "reward_hacking_gap": gap,
        "reward_hacking_by_response": by_response,
        "contrasts": paired,
    }


def seed_figures(
    pages: dict[str, list[Tensor]], ev: EvalSet, baseline: Tensor, seeds: list[int]
) -> dict[str, Any] | None:
    """The training noise of the test figures (None without a world). ``pages``: per method the greedy lists
    ``[R, K]`` of runs that differ only in the seed of the sampling noise (``seeds``, in order). Per method: each
    run's paired true-utility gain over the ``baseline`` lists, and the gain of the seed average (per request,
    the mean utility over the runs minus the baseline's): the method's expected gain over training runs on these
    requests, its interval from the requests alone. With both methods, the same for LDRO minus GRPO."""
    base = true_utilities(baseline, ev)
    if base is None:
        return None
    utility = {m: np.stack([true_utilities(p, ev) for p in runs]) for m, runs in pages.items()}  # type: ignore[misc]
    out: dict[str, Any] = {"seeds": list(seeds)}
    for m, u in utility.items():
        out[m] = {
            "gain_per_seed": [metrics.paired_difference(run, base) for run in u],
            "gain_seed_mean": metrics.paired_difference(u.mean(0), base),
        }
    if {"ldro", "grpo"} <= set(utility):
        out["ldro_minus_grpo_seed_mean"] = metrics.paired_difference(utility["ldro"].mean(0), utility["grpo"].mean(0))
    return out


def gains_by_response(pages: dict[str, Tensor], ev: EvalSet, baseline: str) -> dict[str, dict[str, dict[str, Any]]]:
    """Per policy other than ``baseline`` and per weighted response: the mean paired gain over ``baseline`` of
    that response's utility part as the training evaluator predicts it (``evaluator_gain``), as the held-out
    evaluator does (``heldout_evaluator_gain``, null without one) and as the world has it (``true_gain``, null
    without a world). The parts sum to the utility gains, so this says which response a fine-tuned policy's
    evaluator gain comes from, whether the other evaluator sees it too (no ground truth needed), and whether it
    is real."""
    assert ev.judges is not None
    judges: dict[str, Judge] = {j: ev.judges[j] for j in ("evaluator", "heldout_evaluator") if j in ev.judges}
    parts: dict[str, dict[str, Any]] = {
        name: {j: response_utilities(judge, p, ev) for j, judge in judges.items()} for name, p in pages.items()
    }
    base = parts[baseline]
    return {
        name: {
            r: {
                "evaluator_gain": _mean_gain(part, base, ("evaluator", "evaluator", r)),
                "heldout_evaluator_gain": _mean_gain(part, base, ("heldout_evaluator", "evaluator", r)),
                "true_gain": _mean_gain(part, base, ("evaluator", "true", r)),
            }
            for r in part["evaluator"]["evaluator"]
        }
        for name, part in parts.items()
        if name != baseline
    }


def _mean_gain(part: dict[str, Any], base: dict[str, Any], key: tuple[str, str, str]) -> float | None:
    """Mean of ``part[judge][kind][response] - base[...]``, None where either lacks it."""
    judge, kind, r = key
    if judge not in part or r not in part[judge][kind]:
        return None
    return float((part[judge][kind][r] - base[judge][kind][r]).mean())


def _diff(g: dict[str, float], a: str, b: str) -> float | None:
    return g[a] - g[b] if a in g and b in g else None


def true_curve(steps: list[int], pages: list[Tensor], upstream: Tensor, ev: EvalSet) -> list[tuple[int, float]] | None:
    """The probe curve in true utility (evaluation only; None without a world): at every probe step, the mean
    true utility of the greedy lists ``pages[i] [P, K]`` over that of the upstream lists ``upstream [P, K]``."""
    base = true_utilities(upstream, ev)
    if base is None:
        return None
    mean = float(base.mean())
    return [(s, float(true_utilities(p, ev).mean()) / mean) for s, p in zip(steps, pages)]  # type: ignore[union-attr]


def drift_summary(
    curves: dict[str, list[list[tuple[int, float]]]],
    drift: DriftConfig,
    n_steps: int,
    undrifted: dict[str, list[tuple[int, float]]] | None = None,
) -> dict[str, Any]:
    """One measure's curves: per method the curves of every seed, their mean and (sample) std across seeds, the
    ``final`` value (mean over the probes of the last 20% of the stream) per seed and its mean and std across
    seeds. ``undrifted``: the same method's curve on the undrifted stream (same rate, the grid's seed); its
    ``final`` minus the drifted ``final_mean`` is the ``drift_cost``, free of differences in learning rate. With
    both methods: the verdicts; ``ldro_minus_grpo_final``, the difference of the ``final_mean`` with Welch's 95%
    interval over the seeds (how sure "ends higher" is); ``grpo_over_ldro_final_variance``, the ratio of the
    variances of ``final`` across seeds with its F 95% interval (above 1: LDRO varies less; how sure that is)."""
    out: dict[str, Any] = {"curves": {}, "summary": {}}
    for method, runs in curves.items():
        steps = np.array([s for s, _ in runs[0]], dtype=float)
        values = np.array([[v for _, v in run] for run in runs])  # [S, P]
        tail = steps >= (1 - TAIL) * steps[-1]
        final = values[:, tail].mean(1)
        after = steps >= (drift.start + drift.ramp) * n_steps
        ddof = 1 if len(runs) > 1 else 0
        out["curves"][method] = {
            "steps": steps.tolist(),
            "values": values.tolist(),
            "mean": values.mean(0).tolist(),
            "std": values.std(0, ddof=ddof).tolist(),
        }
        summary = {
            "seeds": list(drift.seeds),
            "final": final.tolist(),
            "final_mean": float(final.mean()),
            "final_std": float(final.std(ddof=ddof)),
            "last_mean": float(values[:, -1].mean()),
            "post_drift_mean": float(values[:, after].mean()) if after.any() else None,
            "post_drift_seed_std": float(values[:, after].std(0, ddof=ddof).mean()) if after.any() else None,
        }
        if undrifted is not None and method in undrifted:
            ref = np.array([v for _, v in undrifted[method]])
            out["curves"][method]["undrifted"] = ref.tolist()
            summary["undrifted_final"] = float(ref[tail].mean())
            summary["drift_cost"] = summary["undrifted_final"] - summary["final_mean"]
        out["summary"][method] = summary
    s = out["summary"]
    if {"ldro", "grpo"} <= set(s):
        out["ldro_ends_higher"] = s["ldro"]["final_mean"] > s["grpo"]["final_mean"]
        out["ldro_varies_less"] = s["ldro"]["final_std"] < s["grpo"]["final_std"]
        if "drift_cost" in s["ldro"] and "drift_cost" in s["grpo"]:
            out["ldro_loses_less_to_drift"] = s["ldro"]["drift_cost"] < s["grpo"]["drift_cost"]
        # how sure "ends higher" is: the seeds are independent training runs of each method
        out["ldro_minus_grpo_final"] = metrics.welch_difference(s["ldro"]["final"], s["grpo"]["final"])
        out["grpo_over_ldro_final_variance"] = metrics.variance_ratio(s["grpo"]["final"], s["ldro"]["final"])
    return out


def drift_report(
    measures: dict[str, tuple[dict[str, list[list[tuple[int, float]]]], dict[str, list[tuple[int, float]]]]],
    drift: DriftConfig,
    n_steps: int,
) -> dict[str, Any]:
    """``drift.json``: per measure (``true_utility`` where a world exists, ``training_reward`` always; each given
    as ``(drifted curves per method, undrifted curve per method)``) the :func:`drift_summary`. The verdicts at the
    top level (``ldro_ends_higher``, ...) are the true utility's where it exists: the training reward is what
    the policies optimise, so a policy that exploits the evaluator looks good on it."""
    out: dict[str, Any] = {
        "drift": {
            **drift.model_dump(),
            "start_step": drift.start * n_steps,
            "end_step": (drift.start + drift.ramp) * n_steps,
        },
        "measures": {},
    }
    for name, (curves, undrifted) in measures.items():
        out["measures"][name] = {"definition": CURVE_MEASURES[name]} | drift_summary(curves, drift, n_steps, undrifted)
    out["measure"] = "true_utility" if "true_utility" in measures else "training_reward"
    verdicts = (
        "ldro_ends_higher",
        "ldro_varies_less",
        "ldro_loses_less_to_drift",
        "ldro_minus_grpo_final",
        "grpo_over_ldro_final_variance",
    )
    out |= {k: v for k, v in out["measures"][out["measure"]].items() if k in verdicts}
    return out


def plot_drift(report: dict[str, Any], path: Path) -> None:
    """PNG, one panel per measure (true utility first): normalised value vs steps per method, mean across seeds
    and a ±1 std band, the undrifted run dashed, the drift ramp shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(report["measures"], key=lambda m: m != "true_utility")
    fig, axes = plt.subplots(1, len(names), figsize=(7 * len(names), 4), squeeze=False)
    d = report["drift"]
    for ax, name in zip(axes[0], names):
        measure = report["measures"][name]
        ramp = f"{d['component']} scale ramps to x{d['factor']:g}"
        ax.axvspan(d["start_step"], d["end_step"], color="0.85", label=ramp)
        ax.axvline(d["end_step"], color="0.6", lw=0.8)
        for method, color in (("ldro", "tab:blue"), ("grpo", "tab:orange")):
            if method not in measure["curves"]:
                continue
            c = measure["curves"][method]
            steps, mean, std = np.array(c["steps"]), np.array(c["mean"]), np.array(c["std"])
            ax.plot(steps, mean, color=color, label=f"{method.upper()} (mean of {len(c['values'])} seeds)")
            ax.fill_between(steps, mean - std, mean + std, color=color, alpha=0.25)
            if "undrifted" in c:
                ax.plot(steps, c["undrifted"], color=color, ls="--", lw=1, label=f"{method.upper()} without drift")
        ax.set_xlabel("training step (streamed batches)")
        ax.set_ylabel(CURVE_LABELS[name])
        ax.set_title(f"LDRO vs GRPO under injected reward drift: {name.replace('_', ' ')}")
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
