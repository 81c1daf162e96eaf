"""Micro-benchmark of the Best-of-N judge's parts (not a test).

Median and p99 wall time of ``Judge.score`` on one request at a time (the service's shape: 50 candidates, N lists of
10), for the released evaluator, for the same network with one more sequence layer, without its item groups (the
group-transition table and the first screen's group coverage) and without any page-structure terms (the weights the
changed network shares with the released one copied), timed side by side: the judges take turns on every request, so
machine noise hits them alike.

    PYTHONPATH=src python benchmarks/bench_judge.py [--evaluator data/models/evaluator_explore.ckpt] [--requests 300]

Needs a production cycle's outputs (``make run``): the evaluator file and the test split's requests.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from dualrerank.data.datamodule import slate_tensors
from dualrerank.data.slates import Slates
from dualrerank.models.components import SlateInputs
from dualrerank.models.io import build_evaluator, load_model
from dualrerank.paths import Paths
from dualrerank.reranking import Judge


def variant(judge: Judge, hparams: dict, **changes: object) -> Judge:
    """The same judge with ``changes`` to its hyper-parameters (the weights the changed network keeps, copied)."""
    net = build_evaluator({**hparams, **changes})
    kept = net.state_dict()
    state = judge.evaluator.state_dict()
    net.load_state_dict({k: v for k, v in state.items() if k in kept and kept[k].shape == v.shape}, strict=False)
    return Judge(net, judge.item_weights, judge.page_weights)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--root", type=Path, default=Path("."), help="project root (after make run)")
    parser.add_argument("--evaluator", type=Path, default=None, help="evaluator file (default: the released judge)")
    parser.add_argument("--requests", type=int, default=300, help="timed requests per N (>= 100)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the service uses 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = Paths(args.root)
    path = args.evaluator or paths.judge
    _, record = load_model(path)
    if not record["hparams"].get("structure"):
        raise SystemExit(f"{path} has no page-structure terms (train_evaluator.main.structure: false)")
    judges = {"released": Judge.from_file(path)}
    layers = record["hparams"]["n_layers"]
    judges["one more layer"] = variant(judges["released"], record["hparams"], n_layers=layers + 1)
    if record["hparams"].get("n_groups"):
        judges["no groups"] = variant(judges["released"], record["hparams"], n_groups=0)
    judges["no structure"] = variant(judges["released"], record["hparams"], structure=False)
    tensors = slate_tensors(Slates.load(paths.split("test")).subset(slice(0, args.requests)))
    n_cand, page_len = tensors["pad_mask"].shape[1], record["hparams"]["page_len"]
    rng = torch.Generator().manual_seed(0)
    print(f"judge latency, one request of {n_cand} candidates, {args.threads} thread(s), {path}")
    print(f"{'N':>4}  {'judge':<14} {'median ms':>9} {'p99 ms':>7}")
    for n in (16, 48, 64):
        times: dict[str, list[float]] = {name: [] for name in judges}
        for r in range(len(tensors["pad_mask"])):
            x = SlateInputs.from_batch({k: v[r : r + 1] for k, v in tensors.items()})
            pages = torch.stack([torch.randperm(n_cand, generator=rng)[:page_len] for _ in range(n)])[None]
            order = list(judges.items()) if r % 2 else list(reversed(judges.items()))
            for name, judge in order:
                start = time.perf_counter()
                judge.score(x, pages)
                times[name].append(1e3 * (time.perf_counter() - start))
        medians = {}
        for name, values in times.items():
            v = np.array(values[10:])  # first calls warm up
            medians[name] = float(np.median(v))
            print(f"{n:>4}  {name:<14} {medians[name]:>9.2f} {np.percentile(v, 99):>7.2f}")
        for name in judges:
            if name != "released":
                print(f"{n:>4}  ratio to {name:<14} {medians['released'] / medians[name]:>6.2f}")


if __name__ == "__main__":
    main()
