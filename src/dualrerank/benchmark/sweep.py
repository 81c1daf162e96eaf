"""Study ``sweep``: headroom vs dependency strength (``sweep`` section): small worlds regenerated at several
strengths, the pipeline run in each (``data/sweep/s<strength>/``, scratch). Writes ``data/reports/benchmark/
sweep.json`` and ``plots/headroom_vs_strength.png``."""

from __future__ import annotations

import argparse
from pathlib import Path

from dualrerank.benchmark.common import BenchPaths, params_at, write_json
from dualrerank.evaluation.plots import headroom_vs_strength
from dualrerank.evaluation.sweep import run_sweep


def main(argv: list[str], root: Path) -> int:
    argparse.ArgumentParser(prog="dualrerank bench sweep", description=__doc__).parse_args(argv)
    bench = BenchPaths(root)
    result = run_sweep(params_at(root), root)
    out = write_json(bench.report("sweep.json"), result)
    plot = headroom_vs_strength(result, bench.plots / "headroom_vs_strength.png")
    print(f"bench sweep: {out}, {plot}")
    return 0
