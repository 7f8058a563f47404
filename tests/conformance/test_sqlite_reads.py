"""SQLite only: small actor reads run on the event loop's thread, and fall back to a reader.

A lone actor read (the direct path's) is made on the loop's own connection, which never
waits for a lock; these tests check that it sees every commit at once, and that a read
that cannot be made there is made by a reader thread instead.
"""

from __future__ import annotations

import msgspec

from conformance.test_store import commit1, direct
from perdure._store.sqlite import INLINE_READ, SQLiteStore


async def test_a_lone_actor_read_sees_each_commit_at_once(sqlite_store: SQLiteStore) -> None:
    revision = None
    for n in range(1, 6):
        state = msgspec.json.encode({"value": n})
        assert await commit1(sqlite_store, direct(f"Counter/d/{n}", revision, b"J" + state)) is True
        (found,) = await sqlite_store.get_actors(["Counter/d"])
        assert (found.revision, found.state, found.invocations) == (n, b"J" + state, n)
        revision = n


async def test_a_read_the_loop_thread_cannot_make_is_made_by_a_reader(sqlite_store: SQLiteStore) -> None:
    assert await commit1(sqlite_store, direct("Counter/a/1", None, b"J1", actor="Counter/a")) is True
    assert sqlite_store._lconn is not None
    sqlite_store._lconn.close()  # every read on it fails now
    (found,) = await sqlite_store.get_actors(["Counter/a"])
    assert (found.id, found.state) == ("Counter/a", b"J1")


async def test_many_actors_are_read_past_the_loop_threads_limit(sqlite_store: SQLiteStore) -> None:
    ids = [f"Counter/k{i}" for i in range(INLINE_READ + 3)]
    for i, aid in enumerate(ids):
        assert await commit1(sqlite_store, direct(f"{aid}/1", None, b"J%d" % i, actor=aid)) is True
    found = {a.id: a.state for a in await sqlite_store.get_actors([*ids, "Counter/none"])}
    assert found == {aid: b"J%d" % i for i, aid in enumerate(ids)}
