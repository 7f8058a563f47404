"""Executor liveness sooner than a lease: a lock held for the executor's lifetime.

An executor's lease in the database expires ``ttl`` after its last heartbeat,
which is how other executors learn it died when nothing else tells them. Two
things tell them sooner. On one machine (always the case for SQLite) the kernel:
each executor holds an exclusive ``flock`` on its own file, released when the
process dies however it dies. On PostgreSQL the server: each executor holds a
session advisory lock on a connection of its own (``Liveness``), released when
that session ends. Either way a new executor recovers a dead one's instances at
once instead of a lease later; claim tokens still fence every write.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path
from typing import Protocol, runtime_checkable


@runtime_checkable
class Liveness(Protocol):
    """A database that tells whether an executor's session is still there."""

    async def hold_executor(self, executor_id: str) -> None:
        """Hold this executor's lock for as long as it runs (before its lease is written)."""

    async def executor_gone(self, executor_id: str) -> bool:
        """True if nobody holds ``executor_id``'s lock: its process or session is gone."""


class LocalLock:
    """The lock file of one executor (this one's, or another's to probe)."""

    def __init__(self, directory: Path, executor_id: str) -> None:
        self.path = directory / f"{executor_id}.lock"
        self._fd: int | None = None

    def hold(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def holder_is_dead(self) -> bool:
        """True if no live process holds this lock (the file is removed then)."""
        try:
            fd = os.open(self.path, os.O_RDWR)
        except FileNotFoundError:
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        finally:
            os.close(fd)
        self.path.unlink(missing_ok=True)
        return True


def host_name() -> str:
    return socket.gethostname()
