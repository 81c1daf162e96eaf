"""Adaptive micro-batching inside the service: concurrent requests share one forward pass.

BentoML's ``batchable=True`` batches at the HTTP boundary, which makes the request body a list; the
service contract takes one request per body, so the service batches one level down instead. A single
worker runs one batch at a time on its own thread; requests that arrive meanwhile wait in a queue and
form the next batch (up to ``max_batch_size``). A request that finds the worker idle runs at once,
so sequential latency pays nothing for batching; ``max_wait_ms > 0`` adds a fixed wait for a batch to
fill. ``max_batch_size=1`` turns batching off (one forward pass per request, in arrival order).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class MicroBatcher(Generic[In, Out]):
    """``await submit(item)`` -> ``fn([..., item, ...])[i]``, with ``fn`` called on batches of queued items."""

    def __init__(self, fn: Callable[[Sequence[In]], Sequence[Out]], max_batch_size: int, max_wait_ms: float = 0.0):
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        self.fn, self.max_batch_size, self.max_wait = fn, max_batch_size, max_wait_ms / 1000
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rerank")
        self.batch_sizes: list[int] = []  # every batch run so far (for the benchmark and tests)
        self._queue: asyncio.Queue[tuple[In, asyncio.Future[Out]]] | None = None
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: In) -> Out:
        if self._queue is None or self._worker is None or self._worker.done():
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._run())
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        await self._queue.put((item, future))
        return await future

    async def _run(self) -> None:
        assert self._queue is not None
        queue, loop = self._queue, asyncio.get_running_loop()
        while True:
            jobs = [await queue.get()]
            if self.max_wait > 0 and self.max_batch_size > 1:
                await asyncio.sleep(self.max_wait)
            while len(jobs) < self.max_batch_size and not queue.empty():
                jobs.append(queue.get_nowait())
            jobs = [(item, fut) for item, fut in jobs if not fut.cancelled()]  # a client that gave up
            if not jobs:
                continue
            self.batch_sizes.append(len(jobs))
            try:
                outputs = await loop.run_in_executor(self.executor, self.fn, [item for item, _ in jobs])
                if len(outputs) != len(jobs):
                    raise RuntimeError(f"batch function returned {len(outputs)} outputs for {len(jobs)} inputs")
            except Exception as exc:  # fail this batch's requests, keep serving the next ones
                for _, fut in jobs:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            for (_, fut), out in zip(jobs, outputs):
                if not fut.done():
                    fut.set_result(out)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
        self.executor.shutdown(wait=False, cancel_futures=True)
