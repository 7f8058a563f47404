"""The replay cursor: hands out journal positions and the entries recorded there.

Pure: no I/O, no clock. Each durable operation asks ``next(kind, name)``; while
recorded entries remain it returns the one at that position (after checking it
is the same operation), then ``None`` for new positions.
"""

from __future__ import annotations

from collections.abc import Sequence

from perdure._model.errors import NonDeterminismError
from perdure._model.records import JournalEntry, Recorded


class JournalGap(Exception):
    """The recorded positions are not contiguous from 0: a broken invariant."""


class Cursor:
    __slots__ = ("entries", "position")

    def __init__(
        self, entries: Sequence[Recorded], first: int | None = None, last: int | None = None
    ) -> None:
        """``entries`` by position; ``first`` and ``last`` are the lowest and highest positions
        recorded, which must be 0 and ``len(entries) - 1`` (the store's primary key makes
        positions unique, so the two rule out gaps)."""
        if entries and (first != 0 or last != len(entries) - 1):
            raise JournalGap(f"{len(entries)} journal entries are recorded at positions {first} to {last}")
        self.entries = entries
        """The recorded entries, by position (read-only: the runner's replay fast path reads them)."""
        self.position = 0

    def next(self, kind: str, name: str) -> tuple[int, JournalEntry | None]:
        """Take the next position; the entry recorded there, or ``None`` if it is new."""
        pos = self.position
        entries = self.entries
        if pos < len(entries):
            rkind, rname, ok, result, attempts = entries[pos]
            if rkind != kind or rname != name:  # a mismatch consumes nothing
                raise NonDeterminismError(pos, f"{rkind} {rname!r}", f"{kind} {name!r}")
            self.position = pos + 1
            return pos, JournalEntry(pos, kind, name, bool(ok), result, None, attempts)
        self.position = pos + 1
        return pos, None

    def recorded_kind(self) -> str | None:
        """The kind of the entry at the current position, if one is recorded there."""
        return self.entries[self.position][0] if self.position < len(self.entries) else None

    def finish(self) -> None:
        """The code ended: every recorded entry must have been replayed."""
        if self.position < len(self.entries):
            kind, name, *_ = self.entries[self.position]
            raise NonDeterminismError(self.position, f"{kind} {name!r}", "the end of the workflow")
