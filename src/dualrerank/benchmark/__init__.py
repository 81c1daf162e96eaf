"""The research benchmark (``make benchmark``, ``benchmarks/dvc.yaml``): studies that read the production cycle's
outputs and are never part of it. One module per study, each with ``main(argv, root) -> exit code``, run as
``dualrerank bench STUDY [args]``. Nothing outside this package and the command line imports it.

Selection always uses the held-out evaluator on validation; the world's true utility is read only to report.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path

STUDIES: dict[str, str] = {
    "rl": "rl",  # one fine-tuning run: method x lr (grid), seed, drifting stream
    "select": "selection",  # each method's rate, chosen on validation by the held-out evaluator
    "finetune-report": "finetune_study",  # test figures of the chosen runs and the seed spread
    "drift-report": "drift",  # LDRO vs GRPO under injected reward drift
    "evaluate": "research_eval",  # research policies, Best-of-N curve, diagnostics, judge audit, correlation
    "sweep": "sweep",  # headroom vs dependency strength
    "scaling": "scaling",  # the production cycle at one multiple of the training requests
    "scaling-report": "scaling_report",  # the scaling table and plot
    "summary": "results",  # results.json: the figures a docs page quotes
    "results": "render",  # docs/results.md from results.json
}


def study_main(name: str) -> Callable[[list[str], Path], int]:
    """The ``main(argv, root)`` of study ``name``."""
    if name not in STUDIES:
        raise KeyError(f"unknown study {name!r}; studies are {sorted(STUDIES)}")
    module = importlib.import_module(f"dualrerank.benchmark.{STUDIES[name]}")
    return module.main  # type: ignore[no-any-return]
