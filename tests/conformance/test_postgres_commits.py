"""PostgreSQL only: commits that run as one statement stay fenced against a claim in flight.

A step's record commits as one statement of its own (no explicit transaction): these
tests take the instance's row lock from another session, as a claim does between
taking a row and committing its new token, and check what the record does then.
"""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg import sql

from api.waiting import eventually
from conformance.test_store import lease_all
from perdure._model.errors import StoreUnavailable
from perdure._model.records import (
    Append,
    AppendOutcome,
    Claim,
    CreateInstance,
    Enqueue,
    InstanceRow,
    InstanceUpdate,
    JournalEntry,
    Op,
    Status,
)
from perdure._store.postgres import PostgresStore, map_error

NOW = 1_700_000_000.0


def step_record(position: int, token: int) -> Append:
    entry = JournalEntry(position=position, kind="step", name="charge", ok=True, result=b"J1",
                         input=b"J[]", attempts=1, started_at=NOW, ended_at=NOW + 1)  # fmt: skip
    return Append(instance_id="w1", token=token, entries=(entry,))


async def running(store: PostgresStore, token: int) -> None:
    row = InstanceRow(id="w1", name="wf", status=Status.RUNNING, input=b"J[]", created_at=NOW,
                      updated_at=NOW, wake_at=NOW, owner="ex-1", token=token)  # fmt: skip
    assert await store.commit([CreateInstance(row)]) == [True]


async def waiting_for_a_lock(url: str) -> int:
    """How many other sessions of this database wait for a row lock now."""
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query LIKE '%%FOR NO KEY UPDATE%%'"
        )
        found = await cur.fetchone()
        assert found is not None
        return int(found[0])


@pytest.mark.parametrize("claim_commits", [True, False], ids=["claim-commits", "claim-rolls-back"])
async def test_a_step_record_waits_for_a_claim_in_flight_and_lands_only_if_its_token_held(
    pg_store: PostgresStore, postgres_url: str, claim_commits: bool
) -> None:
    await running(pg_store, token=1)
    async with await psycopg.AsyncConnection.connect(postgres_url) as claimer:
        # What claim_ready does to a row it takes: lock it, move its token, commit later.
        await claimer.execute("UPDATE instances SET token = token + 1, owner = 'ex-2' WHERE id = 'w1'")
        record = asyncio.ensure_future(pg_store.commit([step_record(0, token=1)]))
        await eventually(lambda: waiting_for_a_lock(postgres_url), lambda n: n >= 1,
                         what="the step record waiting for the claim's row lock")  # fmt: skip
        assert not record.done()
        if claim_commits:
            await claimer.commit()
        else:
            await claimer.rollback()
        outcome = await asyncio.wait_for(record, 10)
    journal = await pg_store.load_journal("w1")
    if claim_commits:
        assert outcome == [AppendOutcome(ok=False)], "the claim moved the token: the record is stale"
        assert journal == []
    else:
        assert outcome == [AppendOutcome(ok=True)]
        assert [e.position for e in journal] == [0]


async def test_step_records_land_only_under_the_current_token(
    pg_store: PostgresStore, postgres_url: str
) -> None:
    await running(pg_store, token=4)
    assert await pg_store.commit([step_record(0, token=4)]) == [AppendOutcome(ok=True)]
    assert await pg_store.commit([step_record(1, token=3)]) == [AppendOutcome(ok=False)]
    assert await pg_store.commit([step_record(2, token=4)]) == [AppendOutcome(ok=True)]
    assert [e.position for e in await pg_store.load_journal("w1")] == [0, 2]


def call(iid: str, *, owner: str | None) -> InstanceRow:
    """An actor call of Counter/k, made by the executor ``owner`` (to run it there) or a client."""
    status = Status.RUNNING if owner else Status.PENDING
    return InstanceRow(id=iid, name="Counter.add", status=status, input=b"J[]", created_at=NOW,
                       updated_at=NOW, wake_at=NOW, owner=owner, token=1 if owner else 0,
                       actor_id="Counter/k")  # fmt: skip


def call_end(iid: str, token: int) -> Append:
    update = InstanceUpdate(status=Status.COMPLETED, updated_at=NOW + 1, output=b"J1", actor_id="Counter/k")
    return Append(instance_id=iid, token=token, update=update)


async def test_other_executors_hear_of_actor_calls_only_when_one_becomes_ready_for_them(
    pg_store: PostgresStore, postgres_url: str
) -> None:
    channel = pg_store._channel
    async with (
        await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as listener,
        await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as marker,
    ):
        await listener.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

        async def notified_by(op: Op) -> int:
            """How many NOTIFYs committing ``op`` sent: those heard before a marker sent after it."""
            await pg_store.commit([op])
            await marker.execute("SELECT pg_notify(%s, 'mark')", (channel,))
            heard = 0
            async for note in listener.notifies(timeout=10):
                if note.payload == "mark":
                    return heard
                heard += 1
            raise AssertionError(f"the marker NOTIFY never came ({heard} others did)")

        assert await notified_by(Enqueue(call("Counter/k/1", owner="ex-1"))) == 0, "runs where it was made"
        assert await notified_by(Enqueue(call("Counter/k/2", owner="ex-2"))) == 0, "queued behind call 1"
        assert await notified_by(call_end("Counter/k/1", token=1)) == 1, "call 2's turn: ready for anyone"
        await lease_all(pg_store, "ex-2")
        [second] = await pg_store.commit([Claim(executor="ex-2", claim_id="c", now=NOW + 2,
                                                lease_now=NOW + 2, limit=10)])  # fmt: skip
        assert isinstance(second, list)
        assert [r.id for r in second] == ["Counter/k/2"]
        assert await notified_by(call_end("Counter/k/2", token=second[0].token)) == 0, "no call left"
        assert await notified_by(Enqueue(call("Counter/k/3", owner=None))) == 1, "a client's call"

        # A child's end tells the others only if its parent waits for it (the parent is due).
        for child, parent_waits in (("c1", False), ("c2", True)):
            parent, running_child = (
                InstanceRow(id=iid, name="wf", status=Status.RUNNING, input=b"J[]", created_at=NOW,
                            updated_at=NOW, owner="ex-1", token=1, parent_id=up)
                for iid, up in ((f"p-{child}", None), (child, f"p-{child}"))
            )  # fmt: skip
            assert (
                await pg_store.commit([CreateInstance(parent), CreateInstance(running_child)]) == [True] * 2
            )
            topic = f"__child__:{child}" if parent_waits else "something else"
            wait = InstanceUpdate(status=Status.WAITING, updated_at=NOW, waiting_topic=topic)
            await notified_by(Append(instance_id=parent.id, token=1, update=wait))  # (news, heard here)
            end = InstanceUpdate(status=Status.COMPLETED, updated_at=NOW + 1, output=b"J1")
            told = await notified_by(Append(instance_id=child, token=1, update=end))
            assert told == int(parent_waits), f"parent waits: {parent_waits}"
            found = await pg_store.get_instance(parent.id)
            assert found is not None
            assert (found.wake_at == NOW + 1) is parent_waits


async def test_commits_after_their_connection_is_cut_go_on_on_a_new_one(
    pg_store: PostgresStore, postgres_url: str
) -> None:
    await running(pg_store, token=1)
    assert await pg_store.commit([step_record(0, token=1)]) == [AppendOutcome(ok=True)]
    held = pg_store._committer  # the connection commits keep between them
    assert held is not None
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as admin:
        await admin.execute("SELECT pg_terminate_backend(%s)", (held.info.backend_pid,))
    watch = pg_store._watch
    assert watch is not None

    async def watching() -> bool:
        assert watch is not None
        return watch.watching

    # The server's goodbye makes the socket readable with no statement waiting: the loop
    # stops watching it rather than spin on it.
    await eventually(watching, lambda w: not w, what="the idle socket's watch to stop")
    with pytest.raises(StoreUnavailable):
        await pg_store.commit([step_record(1, token=1)])
    assert pg_store._watch is None, "the failed record stopped the watch before letting go of its connection"
    assert await pg_store.commit([step_record(1, token=1)]) == [AppendOutcome(ok=True)]
    assert pg_store._committer is not held
    assert [e.position for e in await pg_store.load_journal("w1")] == [0, 1]


def watched(store: PostgresStore) -> bool:
    """Whether the loop watches the committer's socket between statements."""
    return store._watch is not None and store._watch.watching


async def test_step_records_keep_the_socket_watched_and_other_commits_take_it_back(
    pg_store: PostgresStore,
) -> None:
    await running(pg_store, token=1)
    assert await pg_store.commit([step_record(0, token=1)]) == [AppendOutcome(ok=True)]
    assert watched(pg_store)
    watch = pg_store._watch
    assert await pg_store.commit([step_record(1, token=1)]) == [AppendOutcome(ok=True)]
    assert pg_store._watch is watch, "one watch for record after record"
    assert watched(pg_store)
    # A commit of two records is a transaction psycopg runs (and waits for) itself.
    assert (
        await pg_store.commit([step_record(2, token=1), step_record(3, token=1)])
        == [AppendOutcome(ok=True)] * 2
    )
    assert not watched(pg_store)
    assert watch is not None
    assert not watch.watching, "stopped, not only forgotten"
    assert await pg_store.commit([step_record(4, token=1)]) == [AppendOutcome(ok=True)]
    assert watched(pg_store), "the next record watches again"
    assert [e.position for e in await pg_store.load_journal("w1")] == [0, 1, 2, 3, 4]


async def test_a_step_record_prepares_its_statement_again_when_the_session_lost_it(
    pg_store: PostgresStore,
) -> None:
    await running(pg_store, token=1)
    assert await pg_store.commit([step_record(0, token=1)]) == [AppendOutcome(ok=True)]
    held = pg_store._committer
    assert held is not None
    async with pg_store._commit_conn() as conn:  # as psycopg does after some statements
        await conn.execute("DEALLOCATE ALL")
    assert await pg_store.commit([step_record(1, token=1)]) == [AppendOutcome(ok=True)]
    assert pg_store._committer is held, "no error: the same connection goes on"
    assert [e.position for e in await pg_store.load_journal("w1")] == [0, 1]


async def test_a_step_record_stores_its_values_exactly(pg_store: PostgresStore) -> None:
    await running(pg_store, token=1)
    entry = JournalEntry(position=0, kind="step", name="çhärge ✓ 'x'; --", ok=False,
                         result=bytes(range(256)), input=None, attempts=3,
                         started_at=NOW + 0.1234567890123, ended_at=NOW + 1e-6)  # fmt: skip
    record = Append(instance_id="w1", token=1, entries=(entry,))
    assert await pg_store.commit([record]) == [AppendOutcome(ok=True)]
    assert await pg_store.load_journal("w1") == [entry]


async def test_a_step_record_of_an_unknown_instance_is_refused(pg_store: PostgresStore) -> None:
    assert await pg_store.commit([step_record(0, token=1)]) == [AppendOutcome(ok=False)]
    assert await pg_store.load_journal("w1") == []


async def test_a_transaction_ended_by_the_idle_in_transaction_timeout_is_a_transient_error(
    postgres_url: str,
) -> None:
    """What a paused executor finds when it wakes mid-commit: the server ended its session (so
    that its row locks do not hold up a takeover). That is worth retrying on a new connection
    (the retry is fenced by the claim token), not a permanent failure."""
    async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as paused:
        await paused.execute("SET idle_in_transaction_session_timeout = '50ms'")
        pid = paused.info.backend_pid
        await paused.execute("BEGIN")

        async def alive() -> bool:
            async with await psycopg.AsyncConnection.connect(postgres_url, autocommit=True) as probe:
                cur = await probe.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
                found = await cur.fetchone()
                return bool(found and found[0])

        await eventually(alive, lambda up: not up, what="the server ending the idle transaction")
        with pytest.raises(psycopg.Error) as ended:
            await paused.execute("COMMIT")
    assert isinstance(map_error(ended.value, "commit"), StoreUnavailable), repr(ended.value)


async def test_a_store_of_one_connection_commits_its_records_through_the_pool(postgres_url: str) -> None:
    store = PostgresStore(f"{postgres_url}&pool_size=1")
    await store.open()
    try:
        await running(store, token=1)
        for position in (0, 1):
            assert await store.commit([step_record(position, token=1)]) == [AppendOutcome(ok=True)]
        assert store._committer is None, "the reads need the one connection"
        assert store._watch is None
        assert [e.position for e in await store.load_journal("w1")] == [0, 1]
    finally:
        await store.close()


async def test_a_commit_while_the_kept_connection_is_busy_goes_through_the_pool(
    pg_store: PostgresStore,
) -> None:
    await running(pg_store, token=1)
    assert await pg_store.commit([step_record(0, token=1)]) == [AppendOutcome(ok=True)]
    kept = pg_store._committer
    both = await asyncio.gather(
        pg_store.commit([step_record(1, token=1)]), pg_store.commit([step_record(2, token=1)])
    )
    assert list(both) == [[AppendOutcome(ok=True)]] * 2
    assert pg_store._committer is kept
    assert watched(pg_store)
    assert [e.position for e in await pg_store.load_journal("w1")] == [0, 1, 2]


async def test_step_records_alternating_between_two_stores_store_their_values_exactly(
    pg_store: PostgresStore, postgres_url: str
) -> None:
    other = PostgresStore(postgres_url)
    await other.open()
    try:
        await running(pg_store, token=1)
        entries = [
            JournalEntry(position=p, kind="step", name=f"ß{p}", ok=p % 2 == 0, result=bytes([p, 0, 255]),
                         input=None if p % 2 else b"J[1]", attempts=p + 1, started_at=NOW + p / 3,
                         ended_at=NOW + p / 7)
            for p in range(6)
        ]  # fmt: skip
        for e in entries:  # the same prepared statement, on one store's connection, then the other's
            store = pg_store if e.position % 2 else other
            record = Append(instance_id="w1", token=1, entries=(e,))
            assert await store.commit([record]) == [AppendOutcome(ok=True)]
        assert await pg_store.load_journal("w1") == entries
    finally:
        await other.close()
