"""Study ``select``: each method's learning rate, chosen on validation by the held-out evaluator.

Reads every grid run of ``rl`` (``data/reports/benchmark/rl/*.json``) and keeps, per method, the run with the
highest greedy-list utility on the validation split under the evaluator ``benchmark.selection`` names
(``heldout_val``: the held-out evaluator, default; ``train_val``: the training evaluator, an ablation). The true
utility is never read. Writes ``select.json`` (the grid and the chosen rows) and copies each chosen policy to
``data/benchmark/models/selected/<method>.ckpt``.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from dualrerank.benchmark.common import BenchPaths, params_at, read_reports, write_json

KEYS = {"heldout_val": "val_heldout_evaluator_utility", "train_val": "val_evaluator_utility"}


def choose(runs: dict[str, dict[str, Any]], selection: str) -> dict[str, dict[str, Any]]:
    """Per method, ``{"name": run name, **row}`` of the run with the highest ``KEYS[selection]``; ties go to the
    first name in sorted order. Rows without the key (no such evaluator) cannot be chosen."""
    key = KEYS[selection]
    best: dict[str, dict[str, Any]] = {}
    for name in sorted(runs):
        row = runs[name]
        if row.get(key) is None:
            continue
        held = best.get(row["method"])
        if held is None or row[key] > held[key]:
            best[row["method"]] = {"name": name, **row}
    return best


def grid_table(runs: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per method, its grid rows sorted by rate (curves left out: they stay in the runs' own files)."""
    table: dict[str, list[dict[str, Any]]] = {}
    for name, row in sorted(runs.items(), key=lambda kv: kv[1]["lr"]):
        brief = {k: v for k, v in row.items() if k not in ("curve", "true_curve")}
        table.setdefault(row["method"], []).append({"name": name, **brief})
    return table


def main(argv: list[str], root: Path) -> int:
    argparse.ArgumentParser(prog="dualrerank bench select", description=__doc__).parse_args(argv)
    bench, selection = BenchPaths(root), params_at(root).benchmark.selection
    runs = read_reports(bench.report("rl"))
    chosen = choose(runs, selection)
    if not chosen:
        print("bench select: no grid run has the selection's evaluator utility; run the rl stages first")
        return 1
    for method, row in chosen.items():
        dest = bench.model(f"selected/{method}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bench.model(f"rl/{row['name']}"), dest)
        print(f"bench select: {method} at lr {row['lr']:g} ({KEYS[selection]} {row[KEYS[selection]]:.4f})")
    report = {"selection": selection, "key": KEYS[selection], "grid": grid_table(runs), "chosen": chosen}
    write_json(bench.selection, report)
    return 0
