"""The cyclic garbage collector's young generation while an executor runs in this process.

CPython collects its youngest generation every 700 net allocations of container objects,
and every tenth of those collections the next one. An executor keeps thousands of calls
in flight at once (their coroutines, futures, rows and activations), so most of what a
call allocates lives through two young collections and is promoted to the oldest
generation, where it soon sets off a full collection: a walk over every object of the
process, the resident actors included. On W6 (100,000 actor calls, 2,000 at a time,
10,000 actors resident) those full collections took about 40 ms each, every few thousand
calls: a quarter of the loop thread's time went to the collector.

While an executor runs, the young generation is collected every ``YOUNG`` allocations
instead: calls in flight mostly end before they are promoted, and full collections come
that much less often. Garbage without cycles is freed at once as ever; only cyclic
garbage waits a little longer. An application that chose its own thresholds keeps them:
this changes only CPython's default, and puts it back when the last executor stops.
"""

from __future__ import annotations

import gc
import threading

DEFAULT = (700, 10, 10)
"""CPython's thresholds (3.11, 3.12): the only ones changed here."""
YOUNG = 10_000
"""The young generation's threshold while an executor runs."""

_holders = 0
_lock = threading.Lock()
"""Engines may run on several threads' loops (a ``SyncEngine`` each)."""


def hold() -> None:
    """An executor starts: relax the young generation's threshold if it is CPython's default."""
    global _holders
    with _lock:
        _holders += 1
        if _holders == 1 and gc.get_threshold() == DEFAULT:
            gc.set_threshold(YOUNG, *DEFAULT[1:])


def release() -> None:
    """An executor stopped: the last one puts CPython's default back, if it set it."""
    global _holders
    with _lock:
        _holders = max(0, _holders - 1)
        if _holders == 0 and gc.get_threshold() == (YOUNG, *DEFAULT[1:]):
            gc.set_threshold(*DEFAULT)
