"""Micro-benchmark of the vectorized Gumbel-Max sampler (not a test).

Median wall time of ``gumbel_max_sample`` at serving shape B = 1, K = 10, N = 50 (5 padded candidates), for
G in {1, 16, 64}, on 2 torch threads (``--threads``), plus ``masked_sequential_argmax`` (greedy) for reference.

    PYTHONPATH=src python benchmarks/bench_sampling.py [--calls 500] [--threads 2]

On a shared 2-core box another busy process makes the OpenMP worker fight for a core and the p99 jumps to
scheduler quanta (~8-30 ms); compare medians taken when the machine is otherwise idle.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from dualrerank.sampling import gumbel_max_sample, masked_sequential_argmax


def median_us(fn: Callable[[], object], calls: int, warmup: int = 50) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times) * 1e6, times[int(0.99 * (len(times) - 1))] * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500, help="timed calls per row (>= 200)")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    B, K, N = 1, 10, 50
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(B, K, N, generator=gen)
    pad_mask = torch.zeros(B, N, dtype=torch.bool)
    pad_mask[:, -5:] = True
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, B={B} K={K} N={N}, {args.calls} calls")
    print(f"{'call':<28}{'G':>4}{'median µs':>12}{'p99 µs':>10}")
    med, p99 = median_us(lambda: masked_sequential_argmax(logits, pad_mask), args.calls)
    print(f"{'masked_sequential_argmax':<28}{'-':>4}{med:>12.1f}{p99:>10.1f}")
    for G in (1, 16, 64):
        med, p99 = median_us(lambda G=G: gumbel_max_sample(logits, pad_mask, G, generator=gen), args.calls)
        print(f"{'gumbel_max_sample':<28}{G:>4}{med:>12.1f}{p99:>10.1f}")


if __name__ == "__main__":
    main()
