"""SQLite only: the WAL is checkpointed by a reader thread every few commits (and frames,
more of them when each commit writes few).

SQLite's own checkpoint runs inside the commit that takes the WAL past 1,000 pages; the
store checkpoints in the background long before, so that commit has little left to copy.
The WAL-index (the ``-shm`` file) says how many WAL frames were copied (``nBackfill``)
and how many there are (``mxFrame``): that is what these tests read, as a second
connection running a checkpoint would copy the frames itself.
"""

from __future__ import annotations

import struct
from pathlib import Path

import msgspec

from api.waiting import eventually
from conformance.test_store import commit1, direct, entry, running
from perdure._model.records import Append, AppendOutcome
from perdure._store.sqlite import (
    CHECKPOINT_COMMITS,
    CHECKPOINT_FRAMES,
    DENSE_COMMIT_FRAMES,
    SPARSE_CHECKPOINT_FRAMES,
    SQLiteStore,
)

MX_FRAME = 16
"""Offset of ``mxFrame`` (frames in the WAL) in the WAL-index header."""
N_BACKFILL = 96
"""Offset of ``nBackfill`` (frames copied into the database) in the WAL-index, after the
header's two copies."""


def wal_frames(store: SQLiteStore) -> tuple[int, int]:
    """(frames in the WAL, frames of it copied into the database)."""
    shm = Path(f"{store.path}-shm").read_bytes()
    (frames,) = struct.unpack_from("=I", shm, MX_FRAME)
    (copied,) = struct.unpack_from("=I", shm, N_BACKFILL)
    return frames, copied


async def calls(store: SQLiteStore, n: int) -> None:
    """``n`` direct calls of one actor, one commit each, each changing its state."""
    for i in range(1, n + 1):
        state = b"J" + msgspec.json.encode({"value": i})
        assert await commit1(store, direct(f"Counter/d/{i}", i - 1 if i > 1 else None, state)) is True


async def test_commits_are_checkpointed_before_the_wal_fills(sqlite_store: SQLiteStore) -> None:
    await calls(sqlite_store, CHECKPOINT_COMMITS)

    async def frames() -> tuple[int, int]:
        return wal_frames(sqlite_store)

    written, copied = await eventually(frames, lambda f: f[1] > 0, what="a checkpoint of the WAL")
    assert written < 1000, "SQLite's own checkpoint (at 1,000 pages) did not run: the WAL is short"
    assert copied <= written
    (found,) = await sqlite_store.get_actors(["Counter/d"])
    assert (found.revision, found.invocations) == (CHECKPOINT_COMMITS, CHECKPOINT_COMMITS)


async def test_no_checkpoint_is_started_before_enough_commits(sqlite_store: SQLiteStore) -> None:
    await calls(sqlite_store, CHECKPOINT_COMMITS - 1)
    assert not sqlite_store._checkpointing
    assert wal_frames(sqlite_store)[1] == 0


async def test_small_commits_are_checkpointed_by_the_frames_they_wrote(sqlite_store: SQLiteStore) -> None:
    # One step recorded per commit, as a lone workflow does: a page or two each, the same
    # pages again and again, so a checkpoint waits for SPARSE_CHECKPOINT_FRAMES of them,
    # not CHECKPOINT_FRAMES as for commits of many pages each.
    await running(sqlite_store, "wf-1")
    start = wal_frames(sqlite_store)[0]
    assert start < CHECKPOINT_FRAMES, "the WAL is checkpointed by the frames in it since the store opened"
    position = 0
    while wal_frames(sqlite_store)[0] < SPARSE_CHECKPOINT_FRAMES:
        if position % CHECKPOINT_COMMITS == 0:
            assert wal_frames(sqlite_store)[1] == 0, f"checkpointed after {position} small commits"
        op = Append(instance_id="wf-1", token=1, entries=(entry(position),))
        assert await commit1(sqlite_store, op) == AppendOutcome(ok=True)
        position += 1
    assert wal_frames(sqlite_store)[0] - start < DENSE_COMMIT_FRAMES * position, "the commits were not small"
    assert position > CHECKPOINT_FRAMES, "each commit wrote fewer frames than an actor call"
    for more in range(position, position + CHECKPOINT_COMMITS):  # to the next look at the WAL
        op = Append(instance_id="wf-1", token=1, entries=(entry(more),))
        assert await commit1(sqlite_store, op) == AppendOutcome(ok=True)

    async def frames() -> tuple[int, int]:
        return wal_frames(sqlite_store)

    await eventually(frames, lambda f: f[1] > 0, what="a checkpoint of the WAL")
