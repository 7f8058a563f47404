"""The replay cursor: hands out journal positions and the entries recorded there.

Pure: no I/O, no clock. Each durable operation asks ``next(kind, name)``; while
recorded entries remain it returns the one at that position (after checking it
is the same operation), then ``None`` for new positions.
"""

from __future__ import annotations

from perdure._model.errors import NonDeterminismError
from perdure._model.records import JournalEntry, Replay

_EMPTY = Replay(kinds=[], names=[], oks=[], results=[], attempts=[])


class JournalGap(Exception):
    """The recorded positions are not contiguous from 0: a broken invariant."""


class Cursor:
    __slots__ = ("attempts", "kinds", "names", "oks", "position", "results", "size")

    def __init__(self, recorded: Replay = _EMPTY) -> None:
        """``recorded``: the journal by position, as columns (read-only: the runner's replay
        fast path reads them). Its lowest and highest positions must be 0 and its length
        less one (the store's primary key makes positions unique, so the two rule out gaps)."""
        size = len(recorded.kinds)
        if size and (recorded.first != 0 or recorded.last != size - 1):
            raise JournalGap(
                f"{size} journal entries are recorded at positions {recorded.first} to {recorded.last}"
            )
        self.kinds = recorded.kinds
        self.names = recorded.names
        self.oks = recorded.oks
        self.results = recorded.results
        self.attempts = recorded.attempts
        self.size = size
        self.position = 0

    def next(self, kind: str, name: str) -> tuple[int, JournalEntry | None]:
        """Take the next position; the entry recorded there, or ``None`` if it is new."""
        pos = self.position
        if pos < self.size:
            if self.kinds[pos] != kind or self.names[pos] != name:  # a mismatch consumes nothing
                raise NonDeterminismError(pos, f"{self.kinds[pos]} {self.names[pos]!r}", f"{kind} {name!r}")
            self.position = pos + 1
            ok, result, attempts = bool(self.oks[pos]), self.results[pos], self.attempts[pos]
            return pos, JournalEntry(pos, kind, name, ok, result, None, attempts)
        self.position = pos + 1
        return pos, None

    def recorded_kind(self) -> str | None:
        """The kind of the entry at the current position, if one is recorded there."""
        return self.kinds[self.position] if self.position < self.size else None

    def finish(self) -> None:
        """The code ended: every recorded entry must have been replayed."""
        pos = self.position
        if pos < self.size:
            raise NonDeterminismError(
                pos, f"{self.kinds[pos]} {self.names[pos]!r}", "the end of the workflow"
            )
