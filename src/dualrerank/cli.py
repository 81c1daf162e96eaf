"""``dualrerank <command>``: the project's command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dualrerank.config import ConfigError


def _run(args: argparse.Namespace) -> int:
    from dualrerank.stages.runner import execute

    execute(args.stage, root=Path(args.root), track=not args.no_mlflow)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from dualrerank.validation.check import validate_file

    return validate_file(Path(args.path), Path(args.root), Path(args.report) if args.report else None)


def _summary(args: argparse.Namespace) -> int:
    from dualrerank.evaluation.summary import print_summary

    return print_summary(Path(args.root))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dualrerank", description=__doc__)
    parser.add_argument("--root", default=".", help="repository root holding params.yaml and data/")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run one pipeline stage (as dvc repro does)")
    p.add_argument("stage")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the run to MLflow")
    p.set_defaults(func=_run)

    p = sub.add_parser("validate", help="check a log table (Parquet or CSV) against the data contract")
    p.add_argument("path")
    p.add_argument("--report", help="where to write the JSON report; the markdown report goes beside it (.md)")
    p.set_defaults(func=_validate)

    p = sub.add_parser("summary", help="print the results of the last run (world, validation, evaluation)")
    p.set_defaults(func=_summary)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error in params: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
