"""In-process latency of policies, measured side by side (round-robin) so machine noise hits all alike."""

from __future__ import annotations

import random
import time

import numpy as np
import torch

from dualrerank.evaluation.policies import Policy
from dualrerank.models.components import SlateInputs


def time_policies(
    policies: list[Policy], requests: list[SlateInputs], warmup: int = 5, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Per policy: ``p50_ms``, ``p99_ms``, ``mean_ms`` over one call per element of ``requests``.

    Policies are interleaved in a shuffled order at every request, so slow phases of a shared machine
    affect every policy equally.
    """
    rng = random.Random(seed)
    times: dict[str, list[float]] = {p.name: [] for p in policies}
    with torch.inference_mode():
        for x in requests[:warmup]:
            for p in policies:
                p.pages(x)
        for x in requests:
            order = list(policies)
            rng.shuffle(order)
            for p in order:
                t0 = time.perf_counter()
                p.pages(x)
                times[p.name].append(1000 * (time.perf_counter() - t0))
    return {
        name: {"p50_ms": float(np.median(t)), "p99_ms": float(np.percentile(t, 99)), "mean_ms": float(np.mean(t))}
        for name, t in times.items()
    }


def slice_requests(tensors: dict[str, torch.Tensor], size: int, count: int) -> list[SlateInputs]:
    """``count`` consecutive batches of ``size`` requests (wrapping around) as model inputs."""
    n = len(tensors["pad_mask"])
    out = []
    for i in range(count):
        idx = torch.arange(i * size, (i + 1) * size) % n
        out.append(SlateInputs.from_batch({k: v[idx] for k, v in tensors.items()}))
    return out
