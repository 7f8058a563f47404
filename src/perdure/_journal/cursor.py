"""The replay cursor: hands out journal positions and the entries recorded there.

Pure: no I/O, no clock. Each durable operation asks ``next(kind, name)``; while
recorded entries remain it returns the one at that position (after checking it
is the same operation), then ``None`` for new positions.
"""

from __future__ import annotations

from collections.abc import Sequence

from perdure._model.errors import NonDeterminismError
from perdure._model.records import JournalEntry


class JournalGap(Exception):
    """The recorded positions are not contiguous from 0: a broken invariant."""


class Cursor:
    __slots__ = ("_entries", "position")

    def __init__(self, entries: Sequence[JournalEntry]) -> None:
        for expected, entry in enumerate(entries):
            if entry.position != expected:
                raise JournalGap(f"journal position {expected} is missing (found {entry.position})")
        self._entries = entries
        self.position = 0

    @property
    def recorded(self) -> int:
        return len(self._entries)

    @property
    def replaying(self) -> bool:
        return self.position < len(self._entries)

    def next(self, kind: str, name: str) -> tuple[int, JournalEntry | None]:
        """Take the next position; the entry recorded there, or ``None`` if it is new."""
        pos = self.position
        self.position = pos + 1
        if pos >= len(self._entries):
            return pos, None
        entry = self._entries[pos]
        if entry.kind != kind or entry.name != name:
            self.position = pos  # a mismatch consumes nothing
            raise NonDeterminismError(pos, f"{entry.kind} {entry.name!r}", f"{kind} {name!r}")
        return pos, entry

    def finish(self) -> None:
        """The code ended: every recorded entry must have been replayed."""
        if self.position < len(self._entries):
            entry = self._entries[self.position]
            raise NonDeterminismError(
                self.position, f"{entry.kind} {entry.name!r}", "the end of the workflow"
            )
