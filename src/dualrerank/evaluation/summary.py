"""The results table of ``metrics.json`` (``dualrerank summary``): one row per policy, as Markdown.

Columns whose value is null for every policy are left out, and a note says why (logs without a world have
no true utility; only LETOR data has graded labels), so a missing figure is never shown as a number.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# (metrics.json key, column header, format)
COLUMNS = (
    ("true_utility", "true utility", "{:.4f}"),
    ("true_utility_ci95", "95% CI", "[{:.3f}, {:.3f}]"),
    ("headroom_captured", "headroom", "{:+.3f}"),
    ("graded_ndcg_at_k", "NDCG@K graded", "{:.4f}"),
    ("ndcg_at_k", "NDCG@K logged", "{:.4f}"),
    ("recall_at_v", "recall@V logged", "{:.4f}"),
    ("evaluator_utility", "evaluator", "{:.4f}"),
    ("heldout_evaluator_utility", "held-out evaluator", "{:.4f}"),
    ("latency_ms_p50", "p50 ms", "{:.2f}"),
    ("latency_ms_p99", "p99 ms", "{:.2f}"),
)


def _cell(value: Any, fmt: str) -> str:
    if value is None:
        return "null"
    return fmt.format(*value) if isinstance(value, list) else fmt.format(value)


def format_table(report: dict[str, Any]) -> str:
    """Markdown table of ``report["policies"]`` plus the oracle line."""
    policies: dict[str, dict[str, Any]] = report["policies"]
    used = [c for c in COLUMNS if any(row.get(c[0]) is not None for row in policies.values())]
    lines = [
        "| policy | " + " | ".join(h for _, h, _ in used) + " |",
        "|---|" + "---:|" * len(used),
    ]
    for name, row in policies.items():
        lines.append(f"| {name} | " + " | ".join(_cell(row.get(k), f) for k, _, f in used) + " |")
    oracle = report.get("oracle") or {}
    if oracle.get("utility") is not None:
        lines.append(f"\noracle: true utility {oracle['utility']:.4f} ({oracle['method']})")
    if all(row.get("true_utility") is None for row in policies.values()):
        lines.append("\nno ground truth for these logs: true utility, headroom and the oracle are null")
    if "n_test_requests" in report:
        lines.append(f"test requests: {report['n_test_requests']}")
    return "\n".join(lines)


def summary_table(path: Path) -> str:
    return format_table(json.loads(Path(path).read_text()))
