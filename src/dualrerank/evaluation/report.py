"""The results table (console and markdown) and the markdown report built from ``metrics.json``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

COLUMNS = (
    ("policy", "policy", "{}"),
    ("true_utility", "true U", "{:.4f}"),
    ("ci", "±95%", "{:.4f}"),
    ("headroom_captured", "headroom", "{:.1%}"),
    ("graded_ndcg_at_k", "NDCG@K graded", "{:.3f}"),
    ("ndcg_at_k_shown", "NDCG@K shown", "{:.3f}"),
    ("ndcg_at_k", "NDCG@K all cand.", "{:.3f}"),
    ("recall_at_v", "Recall@V", "{:.3f}"),
    ("evaluator_utility", "eval U", "{:.4f}"),
    ("heldout_evaluator_utility", "held-out U", "{:.4f}"),
    ("latency_ms_p50", "p50 ms", "{:.2f}"),
    ("latency_ms_p99", "p99 ms", "{:.2f}"),
)


def columns(report: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The columns with at least one figure (no true utility without ground truth, no graded NDCG
    without graded labels), so a missing figure is never shown as a number."""
    rows = report["policies"].values()
    has = {k for row in rows for k, v in row.items() if v is not None}
    if "true_utility_ci95" in has:
        has.add("ci")
    return [c for c in COLUMNS if c[0] == "policy" or c[0] in has]


def table_rows(report: dict[str, Any]) -> list[list[str]]:
    """One row of formatted cells per policy (then the oracle); missing figures print as ``-``."""
    cols = columns(report)
    rows = []
    for name, row in report["policies"].items():
        ci = row.get("true_utility_ci95")
        values = {**row, "policy": name, "ci": (ci[1] - row["true_utility"]) if ci else None}
        rows.append([_fmt(fmt, values.get(key)) for key, _, fmt in cols])
    oracle = report.get("oracle") or {}
    if oracle.get("utility") is not None:
        cells = ["-"] * len(cols)
        cells[0], cells[1] = f"oracle ({oracle['method']})", f"{oracle['utility']:.4f}"
        rows.append(cells)
    return rows


NDCG_NOTE = (
    "NDCG@K shown: each policy reorders only the items of the logged page, each with its logged feedback (the "
    "standard reranking evaluation). NDCG@K all cand.: each policy chooses from all candidates, and a candidate "
    "that was never shown counts as irrelevant, which favours the logging policy (it chose what was shown)."
)


def not_computed_lines(report: dict[str, Any]) -> list[str]:
    """What the report could not compute, and why (``metrics.json``'s ``not_computed``)."""
    return [f"{name.replace('_', ' ')}: {why}" for name, why in (report.get("not_computed") or {}).items()]


def _fmt(fmt: str, value: Any) -> str:
    return "-" if value is None else fmt.format(value)


def console_table(report: dict[str, Any]) -> str:
    header = [title for _, title, _ in columns(report)]
    rows = table_rows(report)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    body = ["  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    return "\n".join([line, "-" * len(line), *body])


def markdown_table(report: dict[str, Any]) -> str:
    header = [title for _, title, _ in columns(report)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(report)]
    return "\n".join(lines)


def gate_lines(report: dict[str, Any]) -> list[str]:
    gate = report.get("quality_gate")
    if not gate:
        return []
    out = [f"Quality gate: {'PASSED' if gate['passed'] else 'FAILED'}"]
    for name, check in gate["checks"].items():
        value = "n/a" if check["value"] is None else f"{check['value']:.4g}"
        mark = "ok" if check["passed"] else "FAIL"
        out.append(f"  [{mark}] {name}: {value} ({check['rule']} {check['threshold']:g})")
    return out


def write_markdown(report: dict[str, Any], path: Path, plots: list[Path], reading: list[str]) -> None:
    """``report.md``: the table, the quality gate, the plots and a short reading of the results."""
    parts = [
        "# Dual-Rerank offline evaluation",
        "",
        f"Held-out test requests: {report.get('n_test_requests')}. True utility is the simulated world's "
        "exact expected whole-page utility (watch-minutes); headroom captured = (U - U_score_and_sort) / "
        "(U_oracle - U_score_and_sort); latency is in-process, batch 1.",
        "",
        NDCG_NOTE,
        "",
        markdown_table(report),
        "",
    ]
    missing = not_computed_lines(report)
    if missing:
        parts += ["## Not computed", "", *[f"- {line}" for line in missing], ""]
    gate = gate_lines(report)
    if gate:
        parts += ["```", *gate, "```", ""]
    if reading:
        parts += ["## Reading", "", *[f"- {line}" for line in reading], ""]
    for plot in plots:
        parts += [f"![{plot.stem}](plots/{plot.name})", ""]
    path.write_text("\n".join(parts))


def reading(report: dict[str, Any]) -> list[str]:
    """A few sentences computed from the figures (never written by hand)."""
    rows = report["policies"]
    key = "true_utility" if report["oracle"].get("utility") is not None else "heldout_evaluator_utility"
    scored = {n: r[key] for n, r in rows.items() if r.get(key) is not None}
    if not scored:
        return []
    best = max(scored, key=lambda n: scored[n])
    out = [f"Best policy by {key.replace('_', ' ')}: {best} ({scored[best]:.4f})."]
    if rows.get(best, {}).get("headroom_captured") is not None:
        out.append(
            f"It captures {rows[best]['headroom_captured']:.1%} of the headroom between score-and-sort and "
            f"the oracle ({report['oracle']['method']})."
        )
    ar, kd = rows.get("ar_greedy"), rows.get("nar_kd")
    if ar and kd and ar.get(key) and kd.get(key) is not None:
        speed = (ar.get("latency_ms_p50") or 0) / max(kd.get("latency_ms_p50") or 1e-9, 1e-9)
        out.append(
            f"NAR+KD reaches {kd[key] / ar[key]:.1%} of the AR teacher's utility and is {speed:.1f}x faster at batch 1."
        )
    by_generator = {n: r[key] for n, r in report.get("best_of_n_by_generator", {}).items() if r.get(key) is not None}
    if len(by_generator) > 1:
        listed = ", ".join(f"{n} {v:.4f}" for n, v in by_generator.items())
        top = max(by_generator, key=lambda n: by_generator[n])
        out.append(f"The released Best-of-N size over each student: {listed}; best over {top}.")
    out += _judge_audit_lines(report.get("judge_audit", {}))
    up, ss = (rows.get(n, {}).get("ndcg_at_k") for n in ("upstream", "score_and_sort"))
    both = "upstream" in scored and "score_and_sort" in scored and up is not None and ss is not None
    if both and (up > ss) != (scored["upstream"] > scored["score_and_sort"]):
        out.append(
            "Logged-label NDCG and the utility disagree on upstream vs score-and-sort: labels exist only "
            "for logged items, which favours policies close to the logging policy."
        )
    return out


def _judge_audit_lines(audit: dict[str, Any]) -> list[str]:
    """The judge audit in two sentences: how each judge ranks Best-of-N's lists, and what its choice is worth."""
    if "agreement_within_request" not in audit:
        return []
    head = (
        f"Judge audit, on the {audit['n_lists']} lists per request that Best-of-N over {audit['generator']} chooses "
        f"from: the two evaluators agree at Spearman {audit['agreement_within_request']:.2f} within a request"
    )
    sp, chosen = audit.get("spearman_within_request"), audit.get("selected_true_utility")
    if not sp or not chosen:
        return [head + "."]
    ranks = ", ".join(f"{name.replace('_', ' ')} {v:.2f}" for name, v in sp.items())
    worth = ", ".join(
        f"{name.replace('_', ' ')} {c['mean']:.4f} ({c['gain_vs_released']['mean']:+.4f} "
        f"[{c['gain_vs_released']['ci_low']:+.4f}, {c['gain_vs_released']['ci_high']:+.4f}])"
        for name, c in chosen.items()
        if name != "evaluator_with_rules"
    )
    released = chosen["evaluator_with_rules"]["mean"]
    return [
        f"{head}; each judge's Spearman with the true utility there: {ranks}.",
        f"True utility of the list chosen by the released judge (evaluator with rules): {released:.4f}; "
        f"chosen otherwise, paired against it: {worth}.",
    ]
