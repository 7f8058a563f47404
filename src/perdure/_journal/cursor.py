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
    __slots__ = ("entries", "position")

    def __init__(self, entries: Sequence[JournalEntry]) -> None:
        for expected, entry in enumerate(entries):
            if entry.position != expected:
                raise JournalGap(f"journal position {expected} is missing (found {entry.position})")
        self.entries = entries
        """The recorded entries, by position (read-only: the runner's replay fast path reads them)."""
        self.position = 0

    def next(self, kind: str, name: str) -> tuple[int, JournalEntry | None]:
        """Take the next position; the entry recorded there, or ``None`` if it is new."""
        pos = self.position
        entries = self.entries
        if pos < len(entries):
            entry = entries[pos]
            if entry.kind != kind or entry.name != name:  # a mismatch consumes nothing
                raise NonDeterminismError(pos, f"{entry.kind} {entry.name!r}", f"{kind} {name!r}")
            self.position = pos + 1
            return pos, entry
        self.position = pos + 1
        return pos, None

    def finish(self) -> None:
        """The code ended: every recorded entry must have been replayed."""
        if self.position < len(self.entries):
            entry = self.entries[self.position]
            raise NonDeterminismError(
                self.position, f"{entry.kind} {entry.name!r}", "the end of the workflow"
            )
