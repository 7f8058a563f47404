"""SQLite only: journal packs, what recovery of a long journal reads instead of its rows.

Each full run of ``PACK_SIZE`` positions is packed in the transaction that records the
run's last entry, unless an earlier position is missing then or the results are large;
replay reads the packs contiguous from position 0, then rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import msgspec
import pytest

from conformance.test_store import commit1, replayed, rows_of, running, varied
from perdure._model.records import Append, JournalEntry
from perdure._store.rows import PACK_MAX_BYTES, PACK_SIZE, pack
from perdure._store.sqlite import SQLiteStore


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "packs.db"


@pytest.fixture
async def store(path: Path) -> AsyncIterator[SQLiteStore]:
    store = SQLiteStore(str(path))
    await store.open()
    yield store
    await store.close()


def packs(path: Path, iid: str) -> list[int]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT first FROM journal_packs WHERE instance_id = ?", (iid,))]


async def record(store: SQLiteStore, iid: str, entries: list[JournalEntry], *, token: int = 1) -> None:
    for i in range(0, len(entries), 64):
        assert await commit1(store, Append(instance_id=iid, token=token, entries=tuple(entries[i : i + 64])))


async def test_each_full_run_of_positions_is_packed_and_the_rest_stays_rows(
    store: SQLiteStore, path: Path
) -> None:
    await running(store, "w1")
    entries = [varied(p) for p in range(2 * PACK_SIZE + 5)]
    await record(store, "w1", entries)
    assert packs(path, "w1") == [0, PACK_SIZE]
    assert rows_of(await store.load_replay("w1")) == replayed(entries)


async def test_a_run_whose_last_position_lands_before_another_is_not_packed(
    store: SQLiteStore, path: Path
) -> None:
    await running(store, "w1")
    entries = [varied(p) for p in range(2 * PACK_SIZE)]
    await record(store, "w1", [e for e in entries if e.position != 7])
    await record(store, "w1", [entries[7]])
    assert packs(path, "w1") == [PACK_SIZE]  # the first run was not full when its last entry came
    replay = await store.load_replay("w1")  # rows from 0: the packs used are contiguous from 0
    assert rows_of(replay) == replayed(entries)


async def test_large_results_are_not_packed(store: SQLiteStore, path: Path) -> None:
    await running(store, "w1")
    entries = [varied(p, size=PACK_MAX_BYTES // PACK_SIZE + 1) for p in range(PACK_SIZE)]
    await record(store, "w1", entries)
    assert packs(path, "w1") == []
    assert rows_of(await store.load_replay("w1")) == replayed(entries)


async def test_replay_reads_the_packs_rather_than_the_rows(store: SQLiteStore, path: Path) -> None:
    await running(store, "w1")
    entries = [varied(p) for p in range(PACK_SIZE + 3)]
    await record(store, "w1", entries)
    # Behind the store's back, a pack that differs from its rows: replay must show it.
    forged = [("step", "forged", 1, b"J0", 1)] * PACK_SIZE
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE journal_packs SET data = ? WHERE first = 0", (pack(forged),))
    replay = await store.load_replay("w1")
    assert rows_of(replay) == forged + replayed(entries[PACK_SIZE:])
    assert await store.load_journal("w1") == entries  # histories read the rows


FULL = pack([("step", "a", 1, b"J0", 1)] * PACK_SIZE)
assert FULL is not None


@pytest.mark.parametrize("data", [b"\xc1 not msgpack", FULL[:-3]])
async def test_a_pack_that_cannot_be_read_is_passed_over_for_the_rows(
    store: SQLiteStore, path: Path, data: bytes
) -> None:
    await running(store, "w1")
    entries = [varied(p) for p in range(2 * PACK_SIZE)]
    await record(store, "w1", entries)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE journal_packs SET data = ? WHERE first = 0", (data,))
    assert rows_of(await store.load_replay("w1")) == replayed(entries)


async def test_a_pack_of_the_wrong_size_is_passed_over_for_the_rows(store: SQLiteStore, path: Path) -> None:
    await running(store, "w1")
    entries = [varied(p) for p in range(2 * PACK_SIZE)]
    await record(store, "w1", entries)
    short = msgspec.msgpack.encode([["step"], ["a"], [0] * 10, [True] * 10, [b"J0"] * 10, [1] * 10])
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE journal_packs SET data = ? WHERE first = 0", (short,))
    assert rows_of(await store.load_replay("w1")) == replayed(entries)
