"""Adaptive batching: concurrent requests for one model become one model call.

A request joins the model's queue. If no model call is running, a drain task starts at once;
while a call runs, new requests wait and are then predicted together (up to
``max_batch_size`` rows). The batcher waits up to ``max_delay`` for company only when it has
recently seen concurrent requests, so a lone client never pays the delay.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mlwright.serve._registry import ServedModel

__all__ = ["Batcher"]


class Batcher:
    """Groups concurrent predictions for one model name.

    Parameters
    ----------
    get_model
        Returns the model to use now (looked up per batch, so a swapped version is used by the
        next batch).
    max_batch_size
        Rows per model call at most.
    max_delay
        Seconds to wait for more requests when traffic is concurrent.
    executor
        Where model calls run (off the event loop, so requests keep queueing meanwhile).
    """

    def __init__(
        self,
        get_model: Callable[[], ServedModel | None],
        *,
        max_batch_size: int,
        max_delay: float,
        executor: ThreadPoolExecutor,
    ) -> None:
        self.get_model = get_model
        self.max_batch_size = max(1, max_batch_size)
        self.max_delay = max_delay
        self.executor = executor
        self.batches = 0
        self.batched_requests = 0
        self._pending: deque[tuple[dict[str, list[Any]], int, asyncio.Future]] = deque()
        self._running = False
        self._concurrent = False

    async def predict(
        self, columns: dict[str, list[Any]], n_rows: int
    ) -> tuple[ServedModel, list[Any], Any]:
        """Predict one request's rows as part of a batch; returns the model used too."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        self._pending.append((columns, n_rows, future))
        if not self._running:
            self._running = True
            loop.create_task(self._drain())
        else:
            self._concurrent = True
        labels, probabilities, model, offset = await future
        if probabilities is not None:
            probabilities = probabilities[offset : offset + n_rows]
        return model, labels[offset : offset + n_rows], probabilities

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                if self._concurrent and self.max_delay > 0:
                    rows = sum(item[1] for item in self._pending)
                    if rows < self.max_batch_size:
                        await asyncio.sleep(self.max_delay)
                self._concurrent = False
                batch = [self._pending.popleft()]
                rows = batch[0][1]
                while self._pending and rows + self._pending[0][1] <= self.max_batch_size:
                    item = self._pending.popleft()
                    batch.append(item)
                    rows += item[1]
                if len(batch) > 1:
                    self._concurrent = True
                await self._run(loop, batch, rows)
        finally:
            self._running = False

    async def _run(self, loop: asyncio.AbstractEventLoop, batch: list, rows: int) -> None:
        model = self.get_model()
        try:
            if model is None:
                raise LookupError("the model was unloaded")
            if len(batch) == 1:
                merged = batch[0][0]
            else:
                # A swap between two requests' validation can change the field set; a field a
                # request lacks is missing for its rows.
                names = {name for item in batch for name in item[0]}
                merged = {
                    name: [value for item in batch for value in item[0].get(name, [None] * item[1])]
                    for name in names
                }
            labels, probabilities = await loop.run_in_executor(
                self.executor, model.predict_columns, merged, rows
            )
        except Exception as err:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(err)
            return
        self.batches += 1
        self.batched_requests += len(batch)
        offset = 0
        for _, n_rows, future in batch:
            if not future.done():
                future.set_result((labels, probabilities, model, offset))
            offset += n_rows
