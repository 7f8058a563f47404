"""Threads for the ``def`` methods of direct actor calls, handed over without concurrent.futures.

``loop.run_in_executor`` makes a ``concurrent.futures.Future`` per call (a lock and a
condition), chains an asyncio future to it, and wakes the loop once per result. A direct
call's method usually runs for microseconds, and that bookkeeping then costs more than the
method. Here a call is a tuple on a queue, and results go back to the loop in batches: one
wake-up carries every result that came in while the loop was busy.

A method still never runs on the loop's thread: one that blocks holds a thread of its own,
as before, and calls to other actors go on in the other threads (up to ``max_threads``).
One event loop uses an instance (the engine's).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from typing import Any

_Call = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class MethodThreads:
    """Up to ``max_threads`` threads, started as calls need them, that run calls handed over by ``run``."""

    def __init__(self, max_threads: int, name: str) -> None:
        self._max = max_threads
        self._name = name
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        self._idle = 0
        """Raised by a thread each time it is done with a call, lowered by a call it can run
        (a counting semaphore; under ``_lock``, which a thread takes then anyway)."""
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._ended: list[tuple[asyncio.Future[Any], bool, Any]] = []
        self._closed = False

    def run(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """``fn(*args)`` in one of the threads: a future of the loop for its value or exception."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        if self._closed:
            fut.set_exception(RuntimeError("the engine is closing: no more actor methods run"))
            return fut
        self._calls.put((loop, fut, fn, args))
        with self._lock:
            idle = self._idle > 0
            self._idle -= idle
        if not idle and len(self._threads) < self._max:
            thread = threading.Thread(
                target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return fut

    def shutdown(self) -> None:
        """Let each thread end once the calls queued before are done (without waiting for them)."""
        self._closed = True
        for _ in self._threads:
            self._calls.put(None)

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            loop, fut, fn, args = call
            try:
                value, ok = fn(*args), True
            except StopIteration as exc:  # an asyncio future refuses it: say what it was
                value, ok = RuntimeError(f"the method raised StopIteration: {exc!r}"), False
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting call, as run_in_executor does
                value, ok = exc, False
            self._hand_back(loop, fut, ok, value)
            del call, fn, args, value  # hold nothing of the call while idle

    def _hand_back(
        self, loop: asyncio.AbstractEventLoop, fut: asyncio.Future[Any], ok: bool, value: Any
    ) -> None:
        with self._lock:
            self._ended.append((fut, ok, value))
            first = len(self._ended) == 1
            self._idle += 1  # done with it: free for the next call
        if first:  # later results ride on this wake-up
            try:
                loop.call_soon_threadsafe(self._deliver)
            except RuntimeError:  # the loop is closed: nobody waits any more
                pass

    def _deliver(self) -> None:
        with self._lock:
            ended, self._ended = self._ended, []
        for fut, ok, value in ended:
            if fut.cancelled():
                continue
            if ok:
                fut.set_result(value)
            else:
                fut.set_exception(value)
