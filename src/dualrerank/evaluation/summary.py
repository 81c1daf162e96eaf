"""``dualrerank summary``: what the last run produced, from the reports on disk."""

from __future__ import annotations

import json
from pathlib import Path

from dualrerank.evaluation.report import console_table, gate_lines, not_computed_lines
from dualrerank.paths import Paths


def print_summary(root: Path) -> int:
    """Print the world/data summary and the results table; non-zero if nothing has run yet."""
    paths = Paths(root)
    found = False
    if paths.report("world.json").exists():
        found = True
        print(*data_lines(json.loads(paths.report("world.json").read_text())), sep="\n")
    if paths.report("validation.json").exists():
        v = json.loads(paths.report("validation.json").read_text())
        found = True
        state = "passed" if v["success"] else f"FAILED ({v.get('n_failed')} expectations)"
        print(f"Validation {state}: {v.get('n_rows')} rows, {v.get('n_requests')} requests")
    if paths.report("metrics.json").exists():
        found = True
        report = json.loads(paths.report("metrics.json").read_text())
        print(
            f"\nOffline evaluation on {report.get('n_test_requests')} held-out requests "
            f"({paths.report('report.md')}):\n"
        )
        print(console_table(report))
        missing = not_computed_lines(report)
        if missing:
            print("\nNot computed:", *(f"  {line}" for line in missing), sep="\n")
        for line in gate_lines(report):
            print(line)
    if paths.report("release.json").exists():
        print("", *release_lines(json.loads(paths.report("release.json").read_text())), sep="\n")
    if not found:
        print(f"No reports under {paths.reports}: run `make run` (or `dvc repro`) first.")
    return 0 if found else 1


def data_lines(w: dict) -> list[str]:
    """What the logs are: the world's summary, or, for logs without one, what was ingested."""
    if "n_requests" not in w:
        return [f"Data: {w.get('n_rows', 0):.0f} rows from {w.get('source')} logs (no ground truth behind them)"]
    return [
        f"World: {w['n_requests']} requests x {w['n_candidates']} candidates, pages of {w['page_len']}; "
        f"test requests: {w['n_test_requests']}",
        f"  true utility on test: upstream order {w['utility_upstream']:.4f}, logging policy "
        f"{w['utility_logging_policy']:.4f}, sort by true item value {w['utility_item_value_sort']:.4f}, "
        f"oracle {w['utility_oracle']:.4f} [{w['oracle_method']}] (+{w['oracle_over_upstream']:.1%} over upstream)",
    ]


def release_lines(release: dict) -> list[str]:
    """The release decision as a person reads it: every check (value, rule, threshold), then what is served."""
    out = [f"Release checks (held-out evaluator; {release.get('metric')}):"]
    for name, c in (release.get("checks") or {}).items():
        value = "n/a" if c.get("value") is None else f"{c['value']:+.4g}" if "gain" in name else f"{c['value']:.4g}"
        out.append(f"  [{'ok' if c.get('passed') else 'FAIL'}] {name}: {value} ({c['rule']} {c['threshold']:g})")
    version, champion = release.get("registered_version"), release.get("champion_version")
    if release.get("promoted"):
        out.append(f"RELEASED: version {version} is the new champion (the package stage packaged it).")
    elif champion is not None:
        out.append(
            f"NOT RELEASED: version {version} ({release.get('reason')}); champion version {champion} stays served."
        )
    else:
        out.append(f"NOT RELEASED: version {version} ({release.get('reason')}); there is no champion to serve yet.")
    return out
