"""Waiting on conditions with a deadline, never by sleeping a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]], until: Callable[[T], bool], *, what: str, timeout: float = 10.0
) -> T:
    """Poll ``probe()`` until ``until(value)`` holds; fail after ``timeout`` showing the last value."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {value!r}")
        await asyncio.sleep(delay)  # polling inside a deadline, not synchronizing by sleeping
        delay = min(delay * 2, 0.05)


def eventually_sync(
    probe: Callable[[], T], until: Callable[[T], bool], *, what: str, timeout: float = 10.0
) -> T:
    """``eventually`` for synchronous code (the sync engine)."""
    deadline = time.monotonic() + timeout
    delay = 0.002
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last seen: {value!r}")
        time.sleep(delay)  # polling inside a deadline, not synchronizing by sleeping
        delay = min(delay * 2, 0.05)
