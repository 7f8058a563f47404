"""Executor liveness on one machine: a lock file held for the executor's lifetime.

An executor's lease in the database expires ``ttl`` after its last heartbeat,
which is how executors on other machines learn it died. On one machine
(always the case for SQLite) the kernel knows sooner: each executor holds an
exclusive ``flock`` on its own file, released when the process dies however it
dies, so a new executor can recover the dead one's instances at once.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path


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
