"""All time the engine reads or waits on comes from a Clock.

``SystemClock`` is wall time. Tests of long waits use a virtual clock (see
``perdure.testing`` once it lands) with the same two methods. This is the only
module allowed to read the system time.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


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


def monotonic() -> float:
    """For measuring durations (metrics, benchmarks), never for durable time."""
    return time.perf_counter()
