"""``dualrerank <command>``: the project's command line."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dualrerank.config import ConfigError


def _run(args: argparse.Namespace) -> int:
    from dualrerank.config import load_params
    from dualrerank.stages import BENCHMARK_STAGES, STAGES
    from dualrerank.stages.runner import execute

    root = Path(args.root)
    stages = list(STAGES) if args.stage == ["all"] else args.stage
    unknown = [s for s in stages if s not in STAGES + BENCHMARK_STAGES]
    if unknown:
        known = list(STAGES + BENCHMARK_STAGES)
        print(f"error: unknown stage(s) {unknown}; stages are {known} or 'all'", file=sys.stderr)
        return 2
    params = load_params(root / "params.yaml", args.overlay) if args.overlay else None
    if args.overlay:
        print(f"params: {root / 'params.yaml'} with overlay {', '.join(args.overlay)}", flush=True)
    for stage in stages:
        execute(stage, params=params, root=root, track=not args.no_mlflow)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from dualrerank.validation.check import validate_file

    return validate_file(Path(args.path), Path(args.root), Path(args.report) if args.report else None)


def _fetch_mslr(args: argparse.Namespace) -> int:
    from dualrerank.data.mslr import FetchError, fetch_mslr

    try:
        for path in fetch_mslr(Path(args.dest), Path(args.root), force=args.force):
            print(f"fetch-mslr: {path}")
    except FetchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def _summary(args: argparse.Namespace) -> int:
    from dualrerank.evaluation.summary import print_summary

    return print_summary(Path(args.root))


def _bench_serve(args: argparse.Namespace) -> int:
    import json

    from dualrerank.bench.serve import bench_serve
    from dualrerank.benchmark.common import write_json
    from dualrerank.config import load_params
    from dualrerank.paths import Paths

    root = Path(args.root).resolve()
    paths = Paths(root)
    result = bench_serve(load_params(root / "params.yaml").package, paths.split("test"), root)
    out = write_json(Path(args.out) if args.out else paths.report("serving.json"), result)  # stamped with its run
    print(json.dumps({"ratios": result["ratios"], "checks": result["checks"]}, indent=2))
    print(f"report: {out}")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    import json

    from dualrerank.config import load_params
    from dualrerank.evaluation.plots import headroom_vs_strength
    from dualrerank.evaluation.sweep import run_sweep
    from dualrerank.paths import Paths

    root = Path(args.root).resolve()
    result = run_sweep(load_params(root / "params.yaml"), root)
    paths = Paths(root)
    paths.reports.mkdir(parents=True, exist_ok=True)
    paths.report("sweep.json").write_text(json.dumps(result, indent=2))
    plot = headroom_vs_strength(result, paths.plots / "headroom_vs_strength.png")
    print(f"sweep: {paths.report('sweep.json')}, {plot}")
    return 0


def _audit_judge(args: argparse.Namespace) -> int:
    import json

    from dualrerank.config import load_params
    from dualrerank.evaluation.evalset import audit_files
    from dualrerank.paths import Paths

    root = Path(args.root).resolve()
    paths = Paths(root)
    generator = Path(args.generator) if args.generator else paths.model("student")
    evaluator = Path(args.evaluator) if args.evaluator else paths.judge
    for path in (generator, evaluator):
        if not path.exists():
            print(f"error: no model file {path}; run the pipeline first (make run)", file=sys.stderr)
            return 2
    for flag, value in (("--requests", args.requests), ("--n-samples", args.n_samples)):
        if value is not None and value < 1:
            print(f"error: {flag} must be at least 1, got {value}", file=sys.stderr)
            return 2
    try:
        params = load_params(root / "params.yaml")
        result = audit_files(params, paths, generator, evaluator, args.split, args.requests, args.n_samples)
    except (TypeError, ValueError) as exc:  # a model file of the wrong kind, or not a model file
        print(f"error: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from dualrerank.benchmark import STUDIES, study_main

    if args.study not in STUDIES:
        print(f"error: unknown study {args.study!r}; studies are {sorted(STUDIES)}", file=sys.stderr)
        return 2
    return study_main(args.study)(list(args.args), Path(args.root).resolve())


def _live(args: argparse.Namespace) -> int:
    from dualrerank.config import load_params
    from dualrerank.live.loop import LiveLoop, clear

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line per round, not per file
    root = Path(args.root)
    params = load_params(root / "params.yaml", args.overlay)
    if args.restart:
        clear(root)
    report = LiveLoop(params, root).run(args.rounds)
    totals = {k: report[k] for k in ("lost_impressions", "duplicated_impressions")}
    print(f"live: {len(report['rounds'])} rows in {root / 'data/reports/live.json'}; {totals}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dualrerank", description=__doc__)
    parser.add_argument("--root", default=".", help="repository root holding params.yaml and data/")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run pipeline stages in order (as dvc repro does); 'all' runs every stage")
    p.add_argument("stage", nargs="+", help="stage names, or 'all'")
    p.add_argument("--no-mlflow", action="store_true", help="do not log the run to MLflow")
    p.add_argument(
        "--overlay",
        action="append",
        help="YAML file of keys merged over params.yaml for this run only (e.g. params.mslr.yaml); "
        "repeat to stack several, later ones win; dvc repro never uses them",
    )
    p.set_defaults(func=_run)

    p = sub.add_parser("validate", help="check a log table (Parquet or CSV) against the data contract")
    p.add_argument("path")
    p.add_argument("--report", help="where to write the JSON report; the markdown report goes beside it (.md)")
    p.set_defaults(func=_validate)

    p = sub.add_parser("fetch-mslr", help="download the MSLR-WEB10K Fold 1 excerpts (rankeval 0.8.2 sdist)")
    p.add_argument("--dest", default="data/raw/mslr", help="folder for the two SVMlight files")
    p.add_argument("--force", action="store_true", help="download again even if the files are in place")
    p.set_defaults(func=_fetch_mslr)

    p = sub.add_parser("summary", help="print the results of the last run (world, validation, evaluation)")
    p.set_defaults(func=_summary)
    p = sub.add_parser("bench-serve", help="load-test the packaged reranker over HTTP (NAR Best-of-N vs AR teacher)")
    p.add_argument("--out", help="report path (default data/reports/serving.json)")
    p.set_defaults(func=_bench_serve)

    p = sub.add_parser(
        "audit-judge", help="how well an evaluator ranks a student's Best-of-N lists (docs/judge.md); validation split"
    )
    p.add_argument(
        "--evaluator", help="evaluator model file (default data/models/evaluator_explore.ckpt, the released judge)"
    )
    p.add_argument("--generator", help="NAR student model file (default data/models/student.ckpt)")
    p.add_argument("--split", default="val", choices=("train", "val", "test"), help="requests to audit (default val)")
    p.add_argument("--requests", type=int, help="audit only the first N requests of the split")
    p.add_argument("--n-samples", type=int, help="lists per request (default: the released Best-of-N size)")
    p.add_argument("--out", help="also write the JSON result to this file")
    p.set_defaults(func=_audit_judge)

    p = sub.add_parser("live", help="the live loop: arms served over HTTP, learning from their own logs (docs/live.md)")
    p.add_argument("--rounds", type=int, help="play at most N rounds not done yet (default: all of live.rounds)")
    p.add_argument("--restart", action="store_true", help="delete data/live and start from round 0")
    p.add_argument("--overlay", action="append", help="YAML file of keys merged over params.yaml for this run")
    p.set_defaults(func=_live)

    p = sub.add_parser("sweep", help="headroom vs dependency strength: small worlds at several strengths")
    p.set_defaults(func=_sweep)

    p = sub.add_parser("bench", help="a study of the research benchmark (benchmarks/dvc.yaml, make benchmark)")
    p.add_argument("study", help="rl, select, finetune-report, drift-report, evaluate, sweep, scaling, ..., results")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the study's own arguments (dualrerank bench STUDY -h)")
    p.set_defaults(func=_bench)

    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"error in params: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
