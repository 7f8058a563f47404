"""All time the engine reads or waits on comes from a Clock.

``SystemClock`` is wall time. ``VirtualClock`` (public in ``perdure.testing``)
jumps ahead when the engine is idle, so tests of long waits run at once. This
is the only module allowed to read the system time.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from typing import Any, Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    async def sleep_until(self, when: float, wake: asyncio.Event | None = None) -> None:
        """Return at ``when``, or earlier once ``wake`` is set."""


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float, wake: asyncio.Event | None = None) -> None:
        delay = when - time.time()
        if wake is None:
            if delay > 0:
                await asyncio.sleep(delay)
            return
        if wake.is_set() or delay <= 0:
            return
        try:
            await asyncio.wait_for(wake.wait(), delay)
        except TimeoutError:
            pass


class VirtualClock:
    """Durable time that jumps ahead when the engine is idle: a 30-day flow in milliseconds.

    ``now()`` starts at ``start`` and only moves when told (``advance``) or, with
    ``autojump`` (real seconds, default 0.01), when something waits on the clock and the
    engine committed nothing for that long: time then jumps to the earliest wake-up.
    Leases and polls keep real time, so jumping never expires a live executor.
    """

    def __init__(self, start: float = 1_798_761_600.0, *, autojump: float | None = 0.01) -> None:
        self._now = float(start)
        self.autojump = autojump
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = 0
        self._progress: Callable[[], int] = lambda: 0
        self._jumper: asyncio.Task[None] | None = None

    def bind(self, progress: Callable[[], int]) -> None:
        """Tell the clock how to see progress (the engine's commit count)."""
        self._progress = progress

    def now(self) -> float:
        return self._now

    async def sleep_until(self, when: float, wake: asyncio.Event | None = None) -> None:
        if when <= self._now or (wake is not None and wake.is_set()):
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._seq += 1
        heapq.heappush(self._sleepers, (when, self._seq, fut))
        if self.autojump is not None and (self._jumper is None or self._jumper.done()):
            self._jumper = loop.create_task(self._autojump(), name="perdure-virtual-clock")
        waits: list[asyncio.Future[Any]] = [fut]
        if wake is not None:
            waits.append(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` and wake everything now due."""
        if seconds < 0:
            raise ValueError(f"time only moves forward; got {seconds}")
        self._set(self._now + seconds)

    def _set(self, when: float) -> None:
        self._now = max(self._now, when)
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)

    async def _autojump(self) -> None:
        assert self.autojump is not None
        while True:
            while self._sleepers and self._sleepers[0][2].done():
                heapq.heappop(self._sleepers)  # cancelled waits
            if not self._sleepers:
                return
            seen = self._progress()
            await asyncio.sleep(self.autojump)  # real time: has the engine gone quiet?
            if self._progress() == seen and self._sleepers:
                self._set(self._sleepers[0][0])
