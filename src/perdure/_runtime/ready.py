"""An already-known result: awaitable at once, without a task or a loop round trip.

Replay hands recorded results back through it, so ``await step(...)`` of a
recorded step costs a few hundred nanoseconds.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any


class Ready:
    """An already-known step result, awaitable without a task or a loop round trip."""

    __slots__ = ("_error", "_value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self._value = value
        self._error = error

    def __await__(self) -> Generator[Any, None, Any]:
        if self._error is not None:
            raise self._error
        return self._value
        yield  # type: ignore[unreachable]  # makes this a generator; never reached
