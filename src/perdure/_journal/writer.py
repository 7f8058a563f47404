"""The group-commit writer: one commit carries everything queued while the last was in flight.

Callers ``submit`` operations and await a future for their outcomes. A single
task drains the queue: it takes all that is waiting, commits it as one batch,
and resolves each caller's future with its slice of the outcomes. Latency for a
lone writer is one commit; under load the batch grows and the commit count does
not, which is where throughput comes from. A lone writer (a workflow stepping on
its own, a client starting one workflow at a time) may ``write`` instead: it then
commits its operations itself while the writer's task is idle, sparing the hop to
that task and back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence, Sized

from perdure._model import crashpoints
from perdure._model.errors import StoreUnavailable
from perdure._model.records import Op, Outcome
from perdure._model.stats import Stats
from perdure._store.protocol import Store

log = logging.getLogger("perdure.writer")
LONE_STREAK = 8
"""After this many commits in a row of one caller's operations alone, ``write`` commits that
caller's next ones in its own task, when nothing else is queued or in flight."""
LONE_YIELD = 0.002
"""Seconds a caller committing in its own task may go on without yielding to the loop while
no other callback is ready to run (see ``write``)."""
Queued = tuple[Sequence[Op], "asyncio.Future[list[Outcome]]", object]
"""Operations waiting for the next commit, their caller's future, and who wrote them (or None)."""


class Writer:
    def __init__(self, store: Store, *, max_batch: int = 5000, stats: Stats | None = None) -> None:
        self._store = store
        self._stats = stats or Stats()
        self._max_batch = max_batch
        self._queue: list[Queued] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._busy = False
        """A commit is in flight: the task's, or a caller's own (see ``write``)."""
        self._lone = 0
        """Commits in a row of the operations of ``_last`` alone."""
        self._last: object = None
        """Who wrote the operations of the last commit, if one caller did and said so."""
        self._yielded = 0.0
        """When a caller committing in its own task last yielded to the loop (perf_counter)."""
        self._ready: Sized | None = None
        """The loop's queue of callbacks ready to run, if it shows it (asyncio's does)."""
        self._yielding = False
        """The task is yielding to the callers it just acknowledged (see ``_run``)."""
        self.commits = 0
        self.ops = 0

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._run(), name="perdure-writer")
        ready = getattr(loop, "_ready", None)  # a private attribute: read, never changed
        self._ready = ready if isinstance(ready, Sized) else None

    def submit(self, ops: Sequence[Op], caller: object = None) -> asyncio.Future[list[Outcome]]:
        """Queue ``ops`` for the next commit; the future gets their outcomes, in order.
        ``caller``: who writes them, if it may ``write`` too."""
        fut: asyncio.Future[list[Outcome]] = asyncio.get_running_loop().create_future()
        if self._closing:
            # Infrastructure, not the workflow's fault: the instance stays claimed and is
            # recovered by the next executor.
            fut.set_exception(StoreUnavailable("the engine is closing; no more writes are accepted"))
            return fut
        self._queue.append((ops, fut, caller))
        self._wake.set()
        return fut

    async def write(self, ops: Sequence[Op], caller: object) -> list[Outcome]:
        """Commit ``ops`` of ``caller`` and return their outcomes, as ``submit`` would.

        When nothing is queued or in flight, and either the loop has no other callback
        ready to run (nobody else can write before this commit is done, see ``_alone``) or
        the last ``LONE_STREAK`` commits carried this caller's operations alone, the caller
        commits its ``ops`` itself: the same commit, without the hop to the writer's task
        and back (a Future, a wake-up, a task switch each way). Callers that run at the
        same time (``gather``-ed starts, workflows woken by one commit) find each other
        ready to run, and so share the writer's commits.

        A commit that does not wait (SQLite's, on the loop's thread) does not yield to the
        loop either, so the caller yields after it if another callback is ready to run
        (another workflow, say), and else once LONE_YIELD seconds passed since it last did
        (for what the loop has not seen yet: sockets, timers). A workflow stepping on its
        own thus pays a round of the loop (and the resumption of its whole stack of
        coroutines) every few steps, not on each. Whatever is submitted meanwhile waits for
        this commit and goes in the next one.
        """
        if self._busy or self._queue or self._closing:
            return await self.submit(ops, caller)
        if (self._lone < LONE_STREAK or caller is not self._last) and not self._alone():
            return await self.submit(ops, caller)
        self._busy = True
        try:
            outcomes = await self._commit(ops, caller)
        finally:
            self._busy = False
            if self._queue or self._closing:
                self._wake.set()
        now = time.perf_counter()
        if self._ready is None or self._ready or now - self._yielded >= LONE_YIELD:
            self._yielded = now
            await asyncio.sleep(0)
        return outcomes

    async def close(self) -> None:
        """Commit what is queued, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        while True:
            if self._busy or not self._queue:
                if self._closing and not self._busy and not self._queue:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            taken, batch = self._take()
            self._busy = True
            try:
                outcomes = await self._commit(batch, taken[0][2] if len(taken) == 1 else None)
            except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
                for _, fut, _ in taken:
                    if not fut.done():
                        fut.set_exception(exc)
                continue
            finally:
                self._busy = False
            start = 0
            for ops, fut, _ in taken:
                end = start + len(ops)
                if not fut.done():
                    fut.set_result(outcomes[start:end])
                start = end
            # Let the callers just acknowledged run up to their next write before the
            # next batch is cut, so it carries their work too instead of a trickle.
            self._yielding = True
            try:
                await asyncio.sleep(0)
            finally:
                self._yielding = False

    def _alone(self) -> bool:
        """Nothing but the running task can write before its commit is done: the loop has no
        other callback ready to run (this task's yield after acknowledging aside)."""
        ready = self._ready
        return ready is not None and len(ready) <= self._yielding

    async def _commit(self, batch: Sequence[Op], caller: object) -> list[Outcome]:
        """Commit one batch, with its crash points and figures; ``caller``: who wrote all of
        it, if one caller did and said so (else None), for the streak ``write`` looks at."""
        crashpoints.hit("journal.before_commit")
        began = time.perf_counter()
        outcomes = await self._store.commit(batch)
        crashpoints.hit("journal.after_commit_before_ack")
        self._lone = self._lone + 1 if caller is not None and caller is self._last else 0
        self._last = caller
        self.commits += 1
        self.ops += len(batch)
        self._stats.commit_seconds.observe(time.perf_counter() - began)
        self._stats.commit_ops.observe(len(batch))
        return outcomes

    def _take(self) -> tuple[list[Queued], list[Op]]:
        taken: list[Queued] = []
        batch: list[Op] = []
        queue = self._queue
        i = 0
        while i < len(queue) and (not batch or len(batch) + len(queue[i][0]) <= self._max_batch):
            ops, fut, caller = queue[i]
            if not fut.cancelled():
                taken.append((ops, fut, caller))
                batch.extend(ops)
            i += 1
        del queue[:i]
        return taken, batch
