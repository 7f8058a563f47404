"""PostgreSQL only: journal packs are written just after the commit that completes a run of
positions, in a transaction of their own fenced by the claim token.

(A step's record on PostgreSQL is one pipelined round trip with no read in it, so the pack,
which reads the run's rows, comes after; ``close`` waits for the packs in flight.)
"""

from __future__ import annotations

import asyncio

import psycopg

from conformance.test_store import replayed, rows_of, running, varied
from perdure._model.records import Append, InstanceUpdate, JournalEntry, Status
from perdure._store.postgres import PostgresStore
from perdure._store.rows import PACK_SIZE, pack

NOW = 1_700_000_000.0


async def packs(url: str, iid: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT first FROM journal_packs WHERE instance_id = %s ORDER BY first", (iid,)
        )
        return [r[0] for r in await cur.fetchall()]


async def record(store: PostgresStore, iid: str, entries: list[JournalEntry], *, token: int = 1) -> None:
    for i in range(0, len(entries), 64):
        (outcome,) = await store.commit(
            [Append(instance_id=iid, token=token, entries=tuple(entries[i : i + 64]))]
        )
        assert outcome


async def test_each_full_run_is_packed_after_its_commit_and_replay_reads_the_packs(postgres_url: str) -> None:
    store = PostgresStore(postgres_url)
    await store.open()
    await running(store, "w1")
    entries = [varied(p) for p in range(2 * PACK_SIZE + 5)]
    await record(store, "w1", entries)
    await store.close()  # waits for the packs being written
    assert await packs(postgres_url, "w1") == [0, PACK_SIZE]

    # Behind the store's back, a pack that differs from its rows: replay must show it.
    forged = [("step", "forged", True, b"J0", 1)] * PACK_SIZE
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("UPDATE journal_packs SET data = %s WHERE first = 0", (pack(forged),))
    again = PostgresStore(postgres_url)
    await again.open()
    try:
        replay = await again.load_replay("w1")
        assert rows_of(replay) == forged + replayed(entries[PACK_SIZE:])
        assert await again.load_journal("w1") == entries  # histories read the rows
    finally:
        await again.close()


async def test_a_pack_is_not_written_under_a_claim_that_is_no_longer_current(
    pg_store: PostgresStore, postgres_url: str
) -> None:
    await running(pg_store, "w1")
    await record(pg_store, "w1", [varied(p) for p in range(PACK_SIZE)])
    await asyncio.gather(*pg_store._packing)
    # Behind the store's back: the pack goes, and another claim takes the instance.
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as conn:
        await conn.execute("DELETE FROM journal_packs")
        await conn.execute("UPDATE instances SET token = 2 WHERE id = 'w1'")
    await pg_store._pack("w1", 1, 0)
    assert await packs(postgres_url, "w1") == []
    await pg_store._pack("w1", 2, 0)
    assert await packs(postgres_url, "w1") == [0]


async def test_continue_as_new_leaves_no_pack_of_the_run_it_ends(
    pg_store: PostgresStore, postgres_url: str
) -> None:
    await running(pg_store, "w1")
    entries = [varied(p) for p in range(PACK_SIZE)]
    await record(pg_store, "w1", entries[:-1])
    # The run's last position and its continue-as-new in one commit: the pack started after
    # it is fenced out (the token moved) and finds no rows; the new run replays nothing.
    again = InstanceUpdate(status=Status.RUNNING, updated_at=NOW + 1, owner="ex-1", new_run_input=b"J[2]")
    (outcome,) = await pg_store.commit(
        [Append(instance_id="w1", token=1, entries=(entries[-1],), update=again)]
    )
    assert outcome
    await asyncio.gather(*pg_store._packing)
    assert await packs(postgres_url, "w1") == []
    assert rows_of(await pg_store.load_replay("w1")) == []
