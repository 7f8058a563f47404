"""The group-commit writer: one commit carries everything queued while the last was in flight.

Callers ``submit`` operations and await a future for their outcomes. A single
task drains the queue: it takes all that is waiting, commits it as one batch,
and resolves each caller's future with its slice of the outcomes. Latency for a
lone writer is one commit; under load the batch grows and the commit count does
not, which is where throughput comes from.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from perdure._model import crashpoints
from perdure._model.errors import StoreUnavailable
from perdure._model.records import Op, Outcome
from perdure._model.stats import Stats
from perdure._store.protocol import Store

log = logging.getLogger("perdure.writer")


class Writer:
    def __init__(self, store: Store, *, max_batch: int = 5000, stats: Stats | None = None) -> None:
        self._store = store
        self._stats = stats or Stats()
        self._max_batch = max_batch
        self._queue: list[tuple[Sequence[Op], asyncio.Future[list[Outcome]]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.commits = 0
        self.ops = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="perdure-writer")

    def submit(self, ops: Sequence[Op]) -> asyncio.Future[list[Outcome]]:
        """Queue ``ops`` for the next commit; the future gets their outcomes, in order."""
        fut: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        if self._closing:
            # Infrastructure, not the workflow's fault: the instance stays claimed and is
            # recovered by the next executor.
            fut.set_exception(StoreUnavailable("the engine is closing; no more writes are accepted"))
            return fut
        self._queue.append((ops, fut))
        self._wake.set()
        return fut

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            taken, batch = self._take()
            crashpoints.hit("journal.before_commit")
            began = time.perf_counter()
            try:
                outcomes = await self._store.commit(batch)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, fut in taken:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            crashpoints.hit("journal.after_commit_before_ack")
            self.commits += 1
            self.ops += len(batch)
            self._stats.commit_seconds.observe(time.perf_counter() - began)
            self._stats.commit_ops.observe(len(batch))
            start = 0
            for ops, fut in taken:
                end = start + len(ops)
                if not fut.done():
                    fut.set_result(outcomes[start:end])
                start = end
            # Let the callers just acknowledged run up to their next write before the
            # next batch is cut, so it carries their work too instead of a trickle.
            await asyncio.sleep(0)

    def _take(self) -> tuple[list[tuple[Sequence[Op], asyncio.Future[list[Outcome]]]], list[Op]]:
        taken: list[tuple[Sequence[Op], asyncio.Future[list[Outcome]]]] = []
        batch: list[Op] = []
        queue = self._queue
        i = 0
        while i < len(queue) and (not batch or len(batch) + len(queue[i][0]) <= self._max_batch):
            ops, fut = queue[i]
            if not fut.cancelled():
                taken.append((ops, fut))
                batch.extend(ops)
            i += 1
        del queue[:i]
        return taken, batch
