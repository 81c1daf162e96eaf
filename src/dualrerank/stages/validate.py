"""Stage ``validate``: check the raw logs against the data contract, then split and pad them.

On failure: the report goes to ``data/reports/validation.{json,md}``, a summary is printed, the stage
raises :class:`ValidationFailed` (non-zero exit) and nothing else is written. On success: time-ordered
``train/val/test`` slates and ``meta.json`` in ``data/processed/``.
"""

from __future__ import annotations

import pandas as pd

from dualrerank.config import Params
from dualrerank.data.slates import SlateMeta, split_bounds, table_to_slates
from dualrerank.paths import Paths
from dualrerank.validation.check import ValidationReport, validate_table, write_report
from dualrerank.world.simulator import World

SECTIONS = ("data", "validate", "world")


class ValidationFailed(RuntimeError):
    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.summary())
        self.report = report


def split_counts(params: Params, paths: Paths, n_requests: int) -> tuple[int, int]:
    """Validation and test request counts. A world's splits are its own (the simulated world's from
    ``params.world``, a LETOR world's from its files), so evaluation finds every test request in it; logs
    without a world split by ``data.val_fraction`` / ``data.test_fraction``."""
    if params.data.source == "world":
        return params.world.n_val_requests, params.world.n_test_requests
    if params.data.source == "svmlight":
        cfg = World.load_config(paths.world)
        return cfg.n_val_requests, cfg.n_test_requests
    return round(n_requests * params.data.val_fraction), round(n_requests * params.data.test_fraction)


def run(params: Params, paths: Paths) -> dict[str, float]:
    table = pd.read_parquet(paths.logs)
    report = validate_table(table, params.validate, params.data.max_candidates, params.data.reward)
    write_report(report, paths.report("validation.json"))  # and validation.md beside it
    print(report.summary(), flush=True)
    if not report.success:
        raise ValidationFailed(report)

    slates, names = table_to_slates(table)
    R = len(slates)
    n_val, n_test = split_counts(params, paths, R)
    bounds = split_bounds(R, n_val, n_test)
    paths.processed.mkdir(parents=True, exist_ok=True)
    for name, rows in bounds.items():
        slates.subset(rows).save(paths.split(name))
    meta = SlateMeta(
        max_candidates=int(slates.pad_mask.shape[1]),
        page_len=int(slates.logged_page.shape[1]),
        n_requests={name: rows.stop - rows.start for name, rows in bounds.items()},
        source=params.data.source,
        **names,
    )
    meta.save(paths.meta)
    return {
        "n_rows": float(len(table)),
        "n_requests": float(R),
        **{f"n_{k}": float(v) for k, v in meta.n_requests.items()},
    }
