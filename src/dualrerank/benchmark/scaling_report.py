"""Study ``scaling-report``: the scaling runs (``scaling/x<factor>.json``) as one table and a plot.

Per stage and factor: seconds and peak memory; per stage the growth exponent of its time (slope of log seconds
on log factor, least squares; 1 = linear in the training requests). Writes ``scaling.json`` and
``plots/scaling.png``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from dualrerank.benchmark.common import BenchPaths, read_reports, write_json


def table(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{stage: {"factors": [...], "seconds": [...], "peak_rss_mib": [...], "time_exponent": e}}``, runs sorted
    by factor, stages in the order of the first run."""
    runs = sorted(runs, key=lambda r: r["factor"])
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        for row in run["stages"]:
            entry = out.setdefault(row["stage"], {"factors": [], "seconds": [], "peak_rss_mib": []})
            entry["factors"].append(run["factor"])
            entry["seconds"].append(row["seconds"])
            entry["peak_rss_mib"].append(row["peak_rss_mib"])
    for entry in out.values():
        entry["time_exponent"] = log_slope(entry["factors"], entry["seconds"])
    return out


def log_slope(x: list[float], y: list[float]) -> float | None:
    """Least-squares slope of ``log y`` on ``log x``; None with fewer than two distinct positive points."""
    pts = [(math.log(a), math.log(b)) for a, b in zip(x, y) if a > 0 and b > 0]
    if len({a for a, _ in pts}) < 2:
        return None
    mx, my = sum(a for a, _ in pts) / len(pts), sum(b for _, b in pts) / len(pts)
    return sum((a - mx) * (b - my) for a, b in pts) / sum((a - mx) ** 2 for a, _ in pts)


def markdown(report: dict[str, Any]) -> str:
    """The table as markdown: one row per stage, seconds and peak MiB per factor, the time exponent."""
    factors = [r["factor"] for r in report["runs"]]
    head = "| stage | " + " | ".join(f"x{f} s | x{f} MiB" for f in factors) + " | time exponent |"
    lines = [head, "|---|" + "---|---|" * len(factors) + "---|"]
    for stage, e in report["stages"].items():
        cells = {f: (s, m) for f, s, m in zip(e["factors"], e["seconds"], e["peak_rss_mib"])}
        row = [f"{cells[f][0]:.1f} | {cells[f][1]:.0f}" if f in cells else "n/a | n/a" for f in factors]
        exp = "n/a" if e["time_exponent"] is None else f"{e['time_exponent']:.2f}"
        lines.append(f"| {stage} | " + " | ".join(row) + f" | {exp} |")
    totals = " | ".join(f"{r['total_seconds']:.1f} | {r['peak_rss_mib']:.0f}" for r in report["runs"])
    lines.append(f"| **total** | {totals} | |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> Path:
    """Two log-log panels: seconds and peak memory per stage vs the factor."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for stage, e in report["stages"].items():
        axes[0].plot(e["factors"], e["seconds"], marker="o", label=stage)
        axes[1].plot(e["factors"], e["peak_rss_mib"], marker="o", label=stage)
    for ax, label in zip(axes, ("seconds", "peak resident memory (MiB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("training requests (x world.n_train_requests)")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0].set_title("Production cycle: stage time vs training requests")
    axes[1].set_title("Production cycle: stage peak memory")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str], root: Path) -> int:
    argparse.ArgumentParser(prog="dualrerank bench scaling-report", description=__doc__).parse_args(argv)
    bench = BenchPaths(root)
    runs = sorted(read_reports(bench.report("scaling")).values(), key=lambda r: r["factor"])
    if not runs:
        print("bench scaling-report: no scaling runs; run the scaling stages first")
        return 1
    summary = [
        {k: r[k] for k in ("factor", "n_train_requests", "total_seconds", "peak_rss_mib", "completed")} for r in runs
    ]
    report: dict[str, Any] = {"runs": summary, "stages": table(runs)}
    text = markdown(report)
    write_json(bench.report("scaling.json"), report | {"markdown": text})
    print(text + f"bench scaling-report: {plot(report, bench.plots / 'scaling.png')}")
    return 0
