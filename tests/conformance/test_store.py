"""The Store protocol suite: what every store must do, written against the protocol only."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import msgspec
import pytest

from perdure._model.errors import IncompatibleDatabase, InvalidArgument, StoreUnavailable
from perdure._model.records import (
    SHARDS,
    Append,
    AppendOutcome,
    Beat,
    Claim,
    CreateInstance,
    DeleteActor,
    DirectCall,
    Enqueue,
    EnqueueOutcome,
    ExpireExecutor,
    InstanceRow,
    InstanceUpdate,
    JournalEntry,
    LeaseShards,
    Message,
    Op,
    Outcome,
    Post,
    Replay,
    RequestCancel,
    Resume,
    RetryState,
    Send,
    Status,
    shard_of,
)
from perdure._store import migrate
from perdure._store.faulty import FaultyStore, parse_faults
from perdure._store.protocol import Store
from perdure._store.retrying import RetryingStore
from perdure._store.rows import PACK_SIZE

from .conftest import Backend

NOW = 1_700_000_000.0
LIVE = NOW + 60.0
FAR = NOW + 3600.0
"""A lease that has not expired yet."""


def row(
    iid: str,
    *,
    name: str = "wf",
    status: Status = Status.PENDING,
    wake_at: float | None = NOW,
    owner: str | None = None,
    token: int = 0,
    data: bytes = b'J{"x":1}',
) -> InstanceRow:
    return InstanceRow(
        id=iid, name=name, status=status, input=data, created_at=NOW, updated_at=NOW,
        wake_at=wake_at, owner=owner, token=token,
    )  # fmt: skip


def entry(position: int, *, name: str = "charge", result: bytes = b"J1") -> JournalEntry:
    return JournalEntry(
        position=position, kind="step", name=name, ok=True, result=result, input=b"J[]",
        attempts=1, started_at=NOW, ended_at=NOW + 1,
    )  # fmt: skip


async def commit1(store: Store, op: Op) -> Outcome:
    (outcome,) = await store.commit([op])
    return outcome


async def create(store: Store, *rows: InstanceRow) -> None:
    outcomes = await store.commit([CreateInstance(r) for r in rows])
    assert outcomes == [True] * len(rows)


async def running(store: Store, iid: str, *, owner: str = "ex-1", token: int = 1) -> InstanceRow:
    """An instance claimed by ``owner`` under ``token``, as an engine creates its own starts."""
    r = row(iid, status=Status.RUNNING, owner=owner, token=token)
    await create(store, r)
    return r


async def lease_all(store: Store, executor: str) -> None:
    """``executor`` alive and holding every shard: it shares them out as of ``FAR``, when it
    is the only executor whose lease holds."""
    await commit1(store, Beat(executor=executor, host="h", pid=2, expires_at=FAR))
    held = await commit1(store, LeaseShards(executor=executor, now=FAR, expires_at=FAR))
    assert held == tuple(range(SHARDS))


async def claim(
    store: Store, executor: str = "ex-2", claim_id: str = "c-1", *, now: float = NOW, limit: int = 100,
) -> list[InstanceRow]:  # fmt: skip
    # A real executor holds a live lease while it claims (one without a lease is taken for
    # dead), and claims in the shards it leases.
    await lease_all(store, executor)
    await commit1(store, Beat(executor=executor, host="h", pid=2, expires_at=now + 60))
    rows = await commit1(
        store, Claim(executor=executor, claim_id=claim_id, now=now, lease_now=now, limit=limit)
    )
    assert isinstance(rows, list)
    return rows


async def state(store: Store, ids: Sequence[str]) -> dict[str, Any]:
    """Everything the protocol lets one read about these instances."""
    return {
        iid: (
            await store.get_instance(iid),
            await store.load_journal(iid),
            (await store.load_replay(iid)).retries,
            await store.next_message(iid, "topic"),
            await store.get_event(iid, "key"),
        )
        for iid in ids
    } | {
        "executors": await store.list_executors(),
        "mailbox": (
            await store.get_actor("Counter/k"),
            await store.next_message("Counter/k", "topic", mailbox=True),
        ),
    }


# --- create -----------------------------------------------------------------


async def test_create_inserts_once_and_a_second_create_changes_nothing(store: Store) -> None:
    original = row("w1")
    assert await commit1(store, CreateInstance(original)) is True

    other = row("w1", name="other", data=b'J{"x":2}', status=Status.RUNNING, owner="ex-9", token=7)
    assert await commit1(store, CreateInstance(other)) is False

    assert await store.get_instance("w1") == original


async def test_an_unknown_instance_reads_as_none_and_empty(store: Store) -> None:
    assert await store.get_instance("nope") is None
    assert await store.load_journal("nope") == []
    assert await store.load_replay("nope") == Replay(kinds=[], names=[], oks=[], results=[], attempts=[])


# --- append, fenced -----------------------------------------------------------


async def test_append_with_the_current_token_writes_entries_retries_and_update(store: Store) -> None:
    await running(store, "w1")
    retry = RetryState(position=2, attempts=1, last_error=b'J"boom"', next_at=NOW + 5)
    update = InstanceUpdate(status=Status.WAITING, updated_at=NOW + 2, wake_at=NOW + 5, owner=None)
    outcome = await commit1(
        store,
        Append(instance_id="w1", token=1, entries=(entry(0), entry(1)), retries=(retry,), update=update),
    )
    assert outcome == AppendOutcome(ok=True, cancel_requested=False)
    assert await store.load_journal("w1") == [entry(0), entry(1)]
    replay = await store.load_replay("w1")
    assert replay.retries == [retry]
    # What replay reads of each entry, in position order, and the span of the positions.
    assert rows_of(replay) == [(e.kind, e.name, e.ok, e.result, e.attempts) for e in (entry(0), entry(1))]
    assert (replay.first, replay.last) == (0, 1)
    found = await store.get_instance("w1")
    assert found is not None
    assert (found.status, found.wake_at, found.owner) == (Status.WAITING, NOW + 5, None)


async def test_append_with_a_stale_token_writes_nothing_and_says_so(store: Store) -> None:
    await running(store, "w1", token=3)
    before = await state(store, ["w1"])
    stale = Append(
        instance_id="w1", token=2, entries=(entry(0),),
        retries=(RetryState(position=0, attempts=1, last_error=b"J0", next_at=NOW),),
        update=InstanceUpdate(status=Status.COMPLETED, updated_at=NOW + 1, output=b"J1"),
        sends=(Message(target="w1", topic="topic", payload=b"J1", at=NOW, sender_key="w1:0"),),
        events=(("key", b"J1", NOW),),
    )  # fmt: skip
    assert await commit1(store, stale) == AppendOutcome(ok=False)
    assert await state(store, ["w1"]) == before


async def test_append_to_a_missing_instance_is_refused(store: Store) -> None:
    assert await commit1(store, Append(instance_id="ghost", token=0, entries=(entry(0),))) == AppendOutcome(
        ok=False
    )
    assert await store.load_journal("ghost") == []


async def test_appends_in_one_batch_are_fenced_one_by_one(store: Store) -> None:
    await running(store, "w1", token=1)
    await running(store, "w2", token=5)
    outcomes = await store.commit(
        [
            Append(instance_id="w1", token=1, entries=(entry(0),)),
            Append(instance_id="w2", token=4, entries=(entry(0),)),
            Append(instance_id="w2", token=5, entries=(entry(0, name="refund"),)),
        ]
    )
    assert [o.ok for o in outcomes if isinstance(o, AppendOutcome)] == [True, False, True]
    assert [e.name for e in await store.load_journal("w2")] == ["refund"]


async def test_a_recorded_journal_position_is_never_overwritten(store: Store) -> None:
    await running(store, "w1")
    await commit1(store, Append(instance_id="w1", token=1, entries=(entry(0, result=b"J1"),)))
    outcome = await commit1(store, Append(instance_id="w1", token=1, entries=(entry(0, result=b"J2"),)))
    assert isinstance(outcome, AppendOutcome)
    assert outcome.ok
    assert await store.load_journal("w1") == [entry(0, result=b"J1")]


async def test_lone_step_records_in_a_row_are_fenced_like_any_append(store: Store) -> None:
    """A workflow stepping on its own: one record per commit, many in a row (the hot path a
    store may take a shortcut for). Each is written once, a stale one writes nothing, and a
    cancel asked for meanwhile is reported with the record, which is written too."""
    await running(store, "w1", token=1)
    for i in range(20):
        assert await commit1(store, Append(instance_id="w1", token=1, entries=(entry(i),))) == AppendOutcome(
            ok=True
        )
    # Submitted again (an ambiguous commit retried): acknowledged, the first record kept.
    again = Append(instance_id="w1", token=1, entries=(entry(19, result=b"J2"),))
    assert await commit1(store, again) == AppendOutcome(ok=True)
    assert await commit1(store, Append(instance_id="w1", token=0, entries=(entry(20),))) == AppendOutcome(
        ok=False
    )
    assert await commit1(store, RequestCancel(instance_id="w1", now=NOW + 1)) is Status.RUNNING
    assert await commit1(store, Append(instance_id="w1", token=1, entries=(entry(20),))) == AppendOutcome(
        ok=True, cancel_requested=True
    )
    assert await store.load_journal("w1") == [entry(i) for i in range(21)]


def plain_end(output: bytes) -> InstanceUpdate:
    """A workflow's end with nothing else to do: no children, no parent, no retry state."""
    return InstanceUpdate(status=Status.COMPLETED, updated_at=NOW + 2, output=output,
                          close_children=False, wake_parent=False)  # fmt: skip


async def test_an_end_with_the_record_before_it_is_fenced_like_any_append(store: Store) -> None:
    """A workflow's end, with the record of its last step (deferred to share the commit) or
    alone (another hot path a store may take a shortcut for): a stale one writes nothing, a
    cancel asked for meanwhile is reported, and one submitted again is acknowledged once."""
    await running(store, "w1", token=1)
    await running(store, "w2", token=1)
    ended = [Append(instance_id="w1", token=1, entries=(entry(0),)),
             Append(instance_id="w1", token=1, update=plain_end(b"J7"))]  # fmt: skip
    stale = [Append(instance_id="w1", token=0, entries=(entry(0),)),
             Append(instance_id="w1", token=0, update=plain_end(b"J8"))]  # fmt: skip
    assert await store.commit(stale) == [AppendOutcome(ok=False)] * 2
    assert await store.load_journal("w1") == []
    assert await commit1(store, RequestCancel(instance_id="w1", now=NOW + 1)) is Status.RUNNING
    assert await store.commit(ended) == [AppendOutcome(ok=True, cancel_requested=True)] * 2
    assert await store.commit(ended) == [AppendOutcome(ok=True, cancel_requested=True)] * 2  # again
    assert await store.load_journal("w1") == [entry(0)]
    assert await commit1(store, Append(instance_id="w2", token=0, update=plain_end(b"J8"))) == AppendOutcome(
        ok=False
    )
    assert await commit1(store, RequestCancel(instance_id="w2", now=NOW + 1)) is Status.RUNNING
    assert await commit1(store, Append(instance_id="w2", token=1, update=plain_end(b"J9"))) == AppendOutcome(
        ok=True, cancel_requested=True
    )
    for iid, output in (("w1", b"J7"), ("w2", b"J9")):
        found = await store.get_instance(iid)
        assert found is not None
        assert (found.status, found.output, found.owner) == (Status.COMPLETED, output, None)


async def test_starts_in_a_row_create_each_instance_once(store: Store) -> None:
    """Starts one by one, one per commit (another hot path a store may take a shortcut for):
    each creates its instance; one of an id taken says so and changes nothing."""
    for i in range(12):
        assert await commit1(store, CreateInstance(row(f"w{i}"))) is True
    assert await commit1(store, CreateInstance(row("w3", name="other"))) is False
    found = await store.get_instance("w3")
    assert found is not None
    assert found.name == "wf"


def varied(position: int, *, size: int = 4) -> JournalEntry:
    """An entry of one of several kinds and outcomes, so that replay rows tell them apart."""
    kind, name, ok = [("step", "charge", True), ("now", "now", True), ("step", "ship", False)][position % 3]
    return JournalEntry(
        position=position, kind=kind, name=name, ok=ok, result=b"J%0*d" % (size, position),
        input=b"J[]", attempts=1 + position % 2, started_at=NOW, ended_at=NOW + 1,
    )  # fmt: skip


def rows_of(replay: Replay) -> list[tuple[object, ...]]:
    """``replay``'s columns as rows: kind, name, ok, result, attempts."""
    return list(zip(replay.kinds, replay.names, replay.oks, replay.results, replay.attempts, strict=True))


def replayed(entries: Sequence[JournalEntry]) -> list[tuple[object, ...]]:
    """What ``load_replay`` must read of ``entries`` (see ``records.Replay``), as rows."""
    return [(e.kind, e.name, e.ok, e.result, e.attempts) for e in sorted(entries, key=lambda e: e.position)]


async def test_a_long_journal_replays_whole_in_position_order_however_it_was_recorded(store: Store) -> None:
    # Past a few packs' worth (rows.PACK_SIZE), recorded out of order in places: position
    # 100 last of all, so the first run of positions is complete only at the very end.
    entries = [varied(p) for p in range(3 * PACK_SIZE + 40)]
    await running(store, "w1")
    first = [e for e in entries[:PACK_SIZE] if e.position != 100]
    for batch in (first, entries[PACK_SIZE:], [entries[100]]):
        for i in range(0, len(batch), 50):
            assert await commit1(store, Append(instance_id="w1", token=1, entries=tuple(batch[i : i + 50])))
    replay = await store.load_replay("w1")
    assert rows_of(replay) == replayed(entries)
    assert (replay.first, replay.last) == (0, len(entries) - 1)
    assert await store.load_journal("w1") == entries


async def test_continue_as_new_drops_the_whole_journal_from_replay(store: Store) -> None:
    await running(store, "w1")
    old = tuple(varied(p) for p in range(PACK_SIZE + 10))
    await commit1(store, Append(instance_id="w1", token=1, entries=old))
    again = InstanceUpdate(status=Status.RUNNING, updated_at=NOW + 1, owner="ex-1", new_run_input=b"J[2]")
    assert await commit1(store, Append(instance_id="w1", token=1, update=again))
    token = (await store.get_instance("w1")).token  # type: ignore[union-attr]
    new = tuple(varied(p, size=6) for p in range(3))
    assert await commit1(store, Append(instance_id="w1", token=token, entries=new))
    replay = await store.load_replay("w1")
    assert rows_of(replay) == replayed(new)
    assert (replay.first, replay.last) == (0, 2)


async def test_clear_retries_drops_retry_state_when_the_instance_ends(store: Store) -> None:
    await running(store, "w1")
    retry = RetryState(position=0, attempts=2, last_error=b"J0", next_at=NOW)
    await commit1(store, Append(instance_id="w1", token=1, retries=(retry,)))
    end = InstanceUpdate(status=Status.COMPLETED, updated_at=NOW + 1, output=b"J3", clear_retries=True)
    await commit1(store, Append(instance_id="w1", token=1, entries=(entry(0),), update=end))
    assert (await store.load_replay("w1")).retries == []
    found = await store.get_instance("w1")
    assert found is not None
    assert (found.status, found.output) == (Status.COMPLETED, b"J3")


async def test_an_end_closes_children_and_wakes_its_parent_unless_told_it_has_none(store: Store) -> None:
    # The hints only spare statements: an end that says it has no children (or no parent)
    # is believed, and one that says nothing closes and wakes as always.
    for n, (close, wake) in enumerate([(True, True), (False, False)]):
        grand, parent, child = f"g{n}", f"p{n}", f"c{n}"
        await running(store, grand)
        await create(store, InstanceRow(
            id=parent, name="wf", status=Status.RUNNING, input=b"J[]", created_at=NOW, updated_at=NOW,
            owner="ex-1", token=1, parent_id=grand, parent_close="terminate",
        ))  # fmt: skip
        await create(store, InstanceRow(
            id=child, name="wf", status=Status.PENDING, input=b"J[]", created_at=NOW, updated_at=NOW,
            wake_at=NOW, parent_id=parent, parent_close="terminate",
        ))  # fmt: skip
        wait = InstanceUpdate(status=Status.WAITING, updated_at=NOW, waiting_topic=f"__child__:{parent}")
        await commit1(store, Append(instance_id=grand, token=1, update=wait))
        end = InstanceUpdate(status=Status.COMPLETED, updated_at=NOW + 1, output=b"J1",
                             close_children=close, wake_parent=wake)  # fmt: skip
        assert await commit1(store, Append(instance_id=parent, token=1, update=end)) == AppendOutcome(ok=True)
        kid, waiting = await store.get_instance(child), await store.get_instance(grand)
        assert kid is not None
        assert waiting is not None
        assert (kid.status is Status.CANCELLED) is close
        assert (waiting.wake_at is not None) is wake


async def test_a_message_sent_while_its_target_starts_waiting_always_wakes_it(
    store: Store, other: Store
) -> None:
    """Two writers at once (another store on the same database): an instance unloading to
    wait on a topic, and a client sending on it. Whichever commits first, the instance ends
    up waiting *and due*; a wake-up lost between them would leave it waiting forever."""
    for n in range(60):
        iid = f"w{n}"
        await running(store, iid)
        wait = InstanceUpdate(status=Status.WAITING, updated_at=NOW, waiting_topic="t")
        await asyncio.gather(
            store.commit([Append(instance_id=iid, token=1, update=wait)]),
            other.commit([Send(message=Message(target=iid, topic="t", payload=b"J1", at=NOW + 1))]),
        )
        found = await store.get_instance(iid)
        assert found is not None
        assert found.status is Status.WAITING
        assert found.wake_at is not None, f"{iid}: the message came, the wake-up was lost"
        assert await store.next_message(iid, "t") == (1, b"J1")


async def test_a_child_ending_while_its_parent_starts_waiting_for_it_always_wakes_it(
    store: Store, other: Store
) -> None:
    for n in range(60):
        parent, child = f"p{n}", f"c{n}"
        await running(store, parent)
        kid = InstanceRow(
            id=child, name="wf", status=Status.RUNNING, input=b"J[]", created_at=NOW, updated_at=NOW,
            owner="ex-2", token=1, parent_id=parent, parent_close="terminate",
        )  # fmt: skip
        await create(store, kid)
        wait = InstanceUpdate(status=Status.WAITING, updated_at=NOW, waiting_topic=f"__child__:{child}")
        end = InstanceUpdate(status=Status.COMPLETED, updated_at=NOW + 1, output=b"J1")
        await asyncio.gather(
            store.commit([Append(instance_id=parent, token=1, update=wait)]),
            other.commit([Append(instance_id=child, token=1, update=end)]),
        )
        found = await store.get_instance(parent)
        assert found is not None
        assert found.wake_at is not None, f"{parent}: its child ended, the wake-up was lost"


async def test_a_message_sent_with_its_journal_entry_is_delivered_once_per_sender(store: Store) -> None:
    await running(store, "sender")
    await create(store, row("target"))
    message = Message(target="target", topic="topic", payload=b'J"hi"', at=NOW, sender_key="sender:0")
    send = Append(instance_id="sender", token=1, entries=(entry(0),), sends=(message,))
    await commit1(store, send)
    await commit1(store, send)
    assert await store.next_message("target", "topic") == (1, b'J"hi"')
    # Consumed with the receiver's journal entry: then there is nothing more.
    (claimed,) = [r for r in await claim(store) if r.id == "target"]
    recv = JournalEntry(position=0, kind="recv", name="topic", ok=True, result=b'J"hi"')
    await commit1(
        store, Append(instance_id="target", token=claimed.token, entries=(recv,), consumes=(("topic", 1),))
    )
    assert await store.next_message("target", "topic") is None


async def test_a_consumed_message_keeps_its_sender_key_but_not_its_payload(
    store: Store, backend: Backend
) -> None:
    # The receiver's journal entry holds the payload; the row stays for the sender's key
    # (a send repeated after its acknowledgement was lost is not delivered again).
    await running(store, "sender")
    await create(store, row("target"))
    message = Message(target="target", topic="topic", payload=b'J"hi"', at=NOW, sender_key="sender:0")
    send = Append(instance_id="sender", token=1, entries=(entry(0),), sends=(message,))
    await commit1(store, send)
    (claimed,) = [r for r in await claim(store) if r.id == "target"]
    recv = JournalEntry(position=0, kind="recv", name="topic", ok=True, result=b'J"hi"')
    await commit1(
        store, Append(instance_id="target", token=claimed.token, entries=(recv,), consumes=(("topic", 1),))
    )
    assert backend.rows("SELECT sender_key, length(payload) FROM messages") == [("sender:0", 0)]
    await commit1(store, send)
    assert await store.next_message("target", "topic") is None
    # The same for an actor's mailbox.
    await commit1(store, Post(mail("t", b"J1", "client:1")))
    first = invocation("Counter/k/1", status=Status.RUNNING, owner="ex-1", token=1)
    await enqueue(store, first)
    recv = JournalEntry(position=0, kind="recv", name="t", ok=True, result=b"J1")
    taken = Append(instance_id=first.id, token=1, entries=(recv,), consumes=(("t", 1),), mailbox="Counter/k")
    assert await commit1(store, taken) == AppendOutcome(ok=True)
    assert backend.rows("SELECT sender_key, length(payload) FROM actor_messages") == [("client:1", 0)]


# --- every operation is safe to submit twice ---------------------------------


async def _world(store: Store) -> None:
    await running(store, "run", owner="ex-1", token=1)
    await create(store, row("due"), row("parked", status=Status.PARKED), row("later", wake_at=NOW + 3600))
    await commit1(store, Beat(executor="ex-1", host="h", pid=1, expires_at=LIVE))
    await lease_all(store, "ex-2")


TWICE: dict[str, list[Op]] = {
    "create": [CreateInstance(row("new"))],
    "append": [
        Append(
            instance_id="run",
            token=1,
            entries=(entry(0), entry(1)),
            retries=(RetryState(position=2, attempts=1, last_error=b"J0", next_at=NOW + 1),),
            update=InstanceUpdate(status=Status.WAITING, updated_at=NOW + 1, wake_at=NOW + 1),
            sends=(Message(target="later", topic="topic", payload=b"J1", at=NOW, sender_key="run:1"),),
            events=(("key", b'J"v"', NOW),),
            mail=(Message(target="Counter/k", topic="topic", payload=b"J3", at=NOW, sender_key="run:1"),),
        )
    ],
    "claim": [Claim(executor="ex-2", claim_id="c-9", now=NOW, lease_now=NOW, limit=10)],
    "beat": [Beat(executor="ex-3", host="h", pid=3, expires_at=LIVE)],
    "expire": [ExpireExecutor(executor="ex-1")],
    # After the expiries, as in an executor's heartbeat (their shards are free for it then).
    "lease-shards": [
        Beat(executor="ex-3", host="h", pid=3, expires_at=FAR),
        LeaseShards(executor="ex-3", now=NOW, expires_at=FAR),
    ],
    "cancel-pending": [RequestCancel(instance_id="due", now=NOW + 1)],
    "cancel-running": [RequestCancel(instance_id="run", now=NOW + 1)],
    "resume": [Resume(instance_id="parked", now=NOW + 1)],
    "send": [
        Send(message=Message(target="later", topic="topic", payload=b"J2", at=NOW, sender_key="client:k"))
    ],
}
TWICE["post"] = [
    Post(Message(target="Counter/k", topic="topic", payload=b"J4", at=NOW, sender_key="client:k"))
]
TWICE["all-in-one-batch"] = [op for ops in TWICE.values() for op in ops]


@pytest.mark.parametrize("ops", list(TWICE.values()), ids=list(TWICE))
async def test_every_operation_is_safe_to_submit_twice(store: Store, ops: list[Op]) -> None:
    await _world(store)
    ids = ["run", "due", "parked", "later", "new"]
    first = await store.commit(ops)
    once = await state(store, ids)
    second = await store.commit(ops)
    assert await state(store, ids) == once
    # A resubmitted claim answers what the first one took (as the rows read now).
    for op, a, b in zip(ops, first, second, strict=True):
        if isinstance(op, Claim):
            assert isinstance(a, list)
            assert isinstance(b, list)
            assert a
            assert [(r.id, r.owner, r.token) for r in a] == [(r.id, r.owner, r.token) for r in b]


# --- claims -----------------------------------------------------------------


async def test_claim_takes_due_pending_and_waiting_instances_only(store: Store) -> None:
    await create(
        store,
        row("pending-due", wake_at=NOW - 1),
        row("waiting-due", status=Status.WAITING, wake_at=NOW),
        row("pending-later", wake_at=NOW + 1),
        row("waiting-later", status=Status.WAITING, wake_at=NOW + 100),
        row("parked", status=Status.PARKED, wake_at=NOW - 1),
        row("completed", status=Status.COMPLETED, wake_at=NOW - 1),
        row("failed", status=Status.FAILED, wake_at=NOW - 1),
        row("cancelled", status=Status.CANCELLED, wake_at=NOW - 1),
    )
    taken = await claim(store, "ex-2")
    assert sorted(r.id for r in taken) == ["pending-due", "waiting-due"]
    for r in taken:
        assert (r.status, r.owner, r.token, r.recoveries) == (Status.RUNNING, "ex-2", 1, 0)
        assert await store.get_instance(r.id) == r
    assert await claim(store, "ex-3", "c-2") == [], "claimed instances are not claimed again"


async def test_claim_takes_at_most_limit_and_never_one_twice(store: Store) -> None:
    await create(store, *(row(f"w{i}", wake_at=NOW - i) for i in range(7)))
    seen: list[str] = []
    for n in range(4):
        batch = await claim(store, "ex-2", f"c-{n}", limit=3)
        assert len(batch) <= 3
        seen += [r.id for r in batch]
    assert sorted(seen) == [f"w{i}" for i in range(7)]


async def test_a_repeated_claim_returns_the_same_rows_without_claiming_more(store: Store) -> None:
    await create(store, row("a"), row("b"))
    first = await claim(store, "ex-2", "c-1", limit=1)
    await create(store, row("c"))
    again = await claim(store, "ex-2", "c-1", limit=1)
    assert again == first
    assert len(first) == 1
    assert first[0].token == 1, "a repeated claim does not bump the token again"


async def test_running_instances_of_a_live_executor_are_not_claimed(store: Store) -> None:
    await running(store, "w1", owner="ex-1")
    await commit1(store, Beat(executor="ex-1", host="h", pid=1, expires_at=LIVE))
    assert await claim(store) == []


async def test_running_instances_of_an_expired_executor_are_recovered(store: Store) -> None:
    await running(store, "w1", owner="ex-1", token=4)
    await commit1(store, Beat(executor="ex-1", host="h", pid=1, expires_at=NOW - 1))
    (taken,) = await claim(store, "ex-2")
    assert (taken.id, taken.owner, taken.token, taken.recoveries) == ("w1", "ex-2", 5, 1)
    # The dead executor's writes are fenced out from now on.
    assert await commit1(store, Append(instance_id="w1", token=4, entries=(entry(0),))) == AppendOutcome(
        ok=False
    )
    assert await store.load_journal("w1") == []


async def test_an_expired_executor_is_recovered_every_time_it_is_claimed(store: Store) -> None:
    await running(store, "w1", owner="ex-1")
    await commit1(store, Beat(executor="ex-1", host="h", pid=1, expires_at=LIVE))
    await commit1(store, ExpireExecutor(executor="ex-1"))
    (first,) = await claim(store, "ex-2", "c-1")
    await commit1(store, Beat(executor="ex-2", host="h", pid=2, expires_at=LIVE))
    await commit1(store, ExpireExecutor(executor="ex-2"))
    (second,) = await claim(store, "ex-3", "c-2")
    assert (first.recoveries, second.recoveries) == (1, 2)
    assert second.owner == "ex-3"
    assert second.token == first.token + 1


async def test_running_instances_whose_executor_is_unknown_are_recovered(store: Store) -> None:
    # An owner with no lease row (lost, or from another database) is as dead as an expired one.
    await running(store, "w1", owner="ex-vanished", token=2)
    (taken,) = await claim(store, "ex-2")
    assert (taken.id, taken.owner, taken.token, taken.recoveries) == ("w1", "ex-2", 3, 1)


async def test_executor_leases_are_listed_and_renewed(store: Store) -> None:
    await commit1(store, Beat(executor="ex-b", host="h2", pid=2, expires_at=NOW))
    await commit1(store, Beat(executor="ex-a", host="h1", pid=1, expires_at=NOW))
    await commit1(store, Beat(executor="ex-a", host="h1", pid=1, expires_at=LIVE))
    leases = {e.id: e for e in await store.list_executors()}
    assert sorted(leases) == ["ex-a", "ex-b"]
    assert (leases["ex-a"].host, leases["ex-a"].pid, leases["ex-a"].expires_at) == ("h1", 1, LIVE)


# --- shard leases -------------------------------------------------------------


async def lease(store: Store, executor: str, *, now: float = NOW) -> tuple[int, ...]:
    """A heartbeat of ``executor`` at ``now``: its lease and its share of the shards."""
    beat = Beat(executor=executor, host="h", pid=1, expires_at=now + 60)
    outcomes = await store.commit([beat, LeaseShards(executor=executor, now=now, expires_at=now + 60)])
    held = outcomes[-1]
    assert isinstance(held, tuple)
    return held


async def test_executors_share_the_shards_out_evenly_as_they_come_and_go(store: Store) -> None:
    every = tuple(range(SHARDS))
    assert await lease(store, "ex-1") == every, "the only executor leases every shard"
    assert await lease(store, "ex-1") == every, "and keeps them"
    # A second executor takes its half at once: the excess of the first, highest first.
    assert await lease(store, "ex-2") == every[32:]
    assert await lease(store, "ex-1") == every[:32], "the first finds it at its next beat"
    # A third: ceil(64 / 3) = 22 each; the newcomer takes each one's excess.
    assert await lease(store, "ex-3") == every[22:32] + every[54:]
    assert await lease(store, "ex-1") == every[:22]
    assert await lease(store, "ex-2") == every[32:54]
    counts = {e.id: e.shards for e in await store.list_executors()}
    assert counts == {"ex-1": 22, "ex-2": 22, "ex-3": 20}
    # One stops: its shards are free at once, and the others take them up to their new share.
    await commit1(store, ExpireExecutor(executor="ex-3"))
    assert {e.id: e.shards for e in await store.list_executors()}["ex-3"] == 0
    first = await lease(store, "ex-1")
    second = await lease(store, "ex-2")
    assert (len(first), len(second)) == (32, 32)
    assert sorted(first + second) == list(every)


async def test_overdue_work_is_claimed_in_any_shard(store: Store) -> None:
    await lease(store, "ex-1")
    theirs = set(await lease(store, "ex-2"))
    ids = [i for i in (f"w{n}" for n in range(200)) if shard_of(row(i)) in theirs][:2]
    await create(store, row(ids[0], wake_at=NOW - 10), row(ids[1], wake_at=NOW - 1))
    # ex-2's shards; ex-1 with room takes what is due since before ``overdue`` (ex-2 is full
    # or slow), and leaves the rest to ex-2.
    claim = Claim(executor="ex-1", claim_id="c-1", now=NOW, lease_now=NOW, limit=10, overdue=NOW - 5)
    taken = await commit1(store, claim)
    assert isinstance(taken, list)
    assert [r.id for r in taken] == [ids[0]]


async def test_an_executor_above_its_share_gives_the_excess_up(store: Store) -> None:
    await lease(store, "ex-1")
    # Two more executors alive that lease nothing yet: ex-1's share is ceil(64 / 3) = 22.
    for other in ("ex-2", "ex-3"):
        await commit1(store, Beat(executor=other, host="h", pid=2, expires_at=LIVE))
    assert await lease(store, "ex-1") == tuple(range(22)), "the excess goes, highest first"
    assert {e.id: e.shards for e in await store.list_executors()}["ex-1"] == 22


async def test_a_dead_executors_shards_go_to_the_living(store: Store) -> None:
    await lease(store, "ex-1")
    await lease(store, "ex-2")
    await lease(store, "ex-1")
    assert len(await lease(store, "ex-2")) == 32
    # ex-1 beats no more: once its lease (now + 60) has run out, ex-2 takes every shard.
    assert await lease(store, "ex-2", now=NOW + 61) == tuple(range(SHARDS))


async def test_claims_take_only_instances_in_the_shards_leased(store: Store) -> None:
    ids = [f"w{i}" for i in range(40)] + [f"Counter/k{i}/1" for i in range(10)]
    await create(store, *(row(i) if "/" not in i else invocation(i, actor=i.rsplit("/", 1)[0]) for i in ids))
    await lease(store, "ex-1")
    await lease(store, "ex-2")
    first = set(await lease(store, "ex-1"))
    second = set(await lease(store, "ex-2"))
    shard = {
        i: shard_of(r)
        for i, r in ((i, row(i) if "/" not in i else invocation(i, actor=i.rsplit("/", 1)[0])) for i in ids)
    }
    assert shard["Counter/k1/1"] == shard_of(invocation("Counter/k1/2", actor="Counter/k1")), "by actor"
    claimed = {}
    for executor, held in (("ex-1", first), ("ex-2", second)):
        rows = await commit1(
            store, Claim(executor=executor, claim_id=f"c-{executor}", now=NOW, lease_now=NOW, limit=100)
        )
        assert isinstance(rows, list)
        claimed[executor] = {r.id for r in rows}
        assert claimed[executor] == {i for i in ids if shard[i] in held}
    assert claimed["ex-1"] | claimed["ex-2"] == set(ids)
    # A lapsed shard lease claims nothing, even for an executor that is still alive.
    await create(store, row("late", wake_at=NOW + 100))
    await commit1(store, Beat(executor="ex-1", host="h", pid=1, expires_at=NOW + 1000))
    late = await commit1(
        store, Claim(executor="ex-1", claim_id="c-late", now=NOW + 100, lease_now=NOW + 100, limit=100)
    )
    assert late == []


# --- cancel and resume ------------------------------------------------------


async def test_cancelling_a_pending_instance_cancels_it_at_once(store: Store) -> None:
    await create(store, row("w1"))
    assert await commit1(store, RequestCancel(instance_id="w1", now=NOW + 1)) is Status.CANCELLED
    found = await store.get_instance("w1")
    assert found is not None
    assert (found.status, found.owner, found.cancel_requested) == (Status.CANCELLED, None, True)
    assert await claim(store) == []


async def test_cancelling_a_running_instance_flags_it_for_its_owner(store: Store) -> None:
    await running(store, "w1", owner="ex-1", token=1)
    assert await commit1(store, RequestCancel(instance_id="w1", now=NOW + 1)) is Status.RUNNING
    found = await store.get_instance("w1")
    assert found is not None
    assert (found.status, found.owner, found.cancel_requested) == (Status.RUNNING, "ex-1", True)
    # The owner learns it at its next commit.
    assert await commit1(store, Append(instance_id="w1", token=1, entries=(entry(0),))) == AppendOutcome(
        ok=True, cancel_requested=True
    )


@pytest.mark.parametrize("status", [Status.COMPLETED, Status.FAILED, Status.CANCELLED])
async def test_cancelling_an_ended_instance_changes_nothing(store: Store, status: Status) -> None:
    await create(store, row("w1", status=status))
    before = await store.get_instance("w1")
    assert await commit1(store, RequestCancel(instance_id="w1", now=NOW + 1)) is status
    assert await store.get_instance("w1") == before


async def test_cancel_and_resume_of_a_missing_instance_answer_none(store: Store) -> None:
    assert await commit1(store, RequestCancel(instance_id="nope", now=NOW)) is None
    assert await commit1(store, Resume(instance_id="nope", now=NOW)) is None


async def test_resume_makes_a_parked_instance_pending_and_due(store: Store) -> None:
    parked = row("w1", status=Status.PARKED, wake_at=None)
    await create(store, parked)
    assert await commit1(store, Resume(instance_id="w1", now=NOW + 5)) is Status.PARKED
    found = await store.get_instance("w1")
    assert found is not None
    assert (found.status, found.wake_at, found.park_reason, found.recoveries, found.owner) == (
        Status.PENDING, NOW + 5, None, 0, None,
    )  # fmt: skip
    assert [r.id for r in await claim(store, now=NOW + 5)] == ["w1"]


@pytest.mark.parametrize("status", [Status.PENDING, Status.RUNNING, Status.WAITING, Status.COMPLETED])
async def test_resume_leaves_instances_that_are_not_parked_alone(store: Store, status: Status) -> None:
    await create(store, row("w1", status=status, owner="ex-1" if status is Status.RUNNING else None))
    before = await store.get_instance("w1")
    assert await commit1(store, Resume(instance_id="w1", now=NOW + 5)) is status
    assert await store.get_instance("w1") == before


# --- listing ----------------------------------------------------------------


async def test_listing_pages_newest_first_until_the_cursor_runs_out(store: Store) -> None:
    await create(store, *(row(f"w{i}") for i in range(7)))
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await store.list_instances(status=None, name=None, limit=3, cursor=cursor)
        pages.append([r.id for r in page.items])
        cursor = page.cursor
        if cursor is None:
            break
    assert pages == [["w6", "w5", "w4"], ["w3", "w2", "w1"], ["w0"]]


async def test_listing_an_exact_page_has_no_cursor(store: Store) -> None:
    await create(store, row("a"), row("b"))
    page = await store.list_instances(status=None, name=None, limit=2, cursor=None)
    assert [r.id for r in page.items] == ["b", "a"]
    assert page.cursor is None


async def test_listing_filters_by_status_and_name(store: Store) -> None:
    await create(
        store,
        row("a1", name="a"),
        row("a2", name="a", status=Status.COMPLETED),
        row("b1", name="b", status=Status.COMPLETED),
    )

    async def ids(status: Status | None, name: str | None) -> list[str]:
        return [
            r.id for r in (await store.list_instances(status=status, name=name, limit=10, cursor=None)).items
        ]

    assert await ids(None, "a") == ["a2", "a1"]
    assert await ids(Status.COMPLETED, None) == ["b1", "a2"]
    assert await ids(Status.COMPLETED, "a") == ["a2"]
    assert await ids(Status.FAILED, None) == []


async def test_counting_groups_instances_by_status_and_name(store: Store) -> None:
    assert await store.count_instances() == {}
    await create(
        store,
        row("a1", name="a"),
        row("a2", name="a", status=Status.COMPLETED),
        row("a3", name="a", status=Status.COMPLETED),
        row("b1", name="b", status=Status.COMPLETED),
    )
    assert await store.count_instances() == {
        (Status.PENDING, "a"): 1,
        (Status.COMPLETED, "a"): 2,
        (Status.COMPLETED, "b"): 1,
    }


@pytest.mark.parametrize("pattern", ["%", "_", "a%", "a_c", "a\\%", "' OR '1'='1", "a*", "[a]"])
async def test_sql_and_like_metacharacters_in_a_name_filter_are_literal(store: Store, pattern: str) -> None:
    names = ["abc", "a%", "a_c", "a\\%", "axc", "%", "_", "' OR '1'='1", "a*", "[a]"]
    await create(store, *(row(f"w{i}", name=n) for i, n in enumerate(names)))
    page = await store.list_instances(status=None, name=pattern, limit=100, cursor=None)
    assert [r.name for r in page.items] == [pattern]


@pytest.mark.parametrize("cursor", ["", "x", "s", "s-1", "1", "s1; DROP TABLE instances", "s1.5"])
async def test_a_malformed_cursor_is_rejected(store: Store, cursor: str) -> None:
    with pytest.raises(InvalidArgument, match="cursor"):
        await store.list_instances(status=None, name=None, limit=10, cursor=cursor)


# --- schema -----------------------------------------------------------------


async def test_a_fresh_database_gets_the_latest_schema(store: Store, backend: Backend) -> None:
    assert await store.schema_version() == migrate.latest(backend.name) >= 1


async def test_reopening_keeps_the_data_and_the_schema(backend: Backend) -> None:
    first = backend.make_store()
    await first.open()
    await create(first, row("w1"))
    await first.close()
    again = backend.make_store()
    await again.open()
    try:
        assert await again.schema_version() == migrate.latest(backend.name)
        assert await again.get_instance("w1") == row("w1")
    finally:
        await again.close()


async def _open_fails(backend: Backend) -> str:
    s = backend.make_store()
    with pytest.raises(IncompatibleDatabase) as info:
        await s.open()
    await s.close()
    return str(info.value)


async def test_a_database_of_another_application_is_refused(backend: Backend) -> None:
    backend.add_foreign_table()
    message = await _open_fails(backend)
    assert "not a perdure database" in message
    assert "customers" in message, "the message shows what was found"


async def test_a_file_that_is_not_a_database_is_refused(backend: Backend) -> None:
    backend.corrupt()
    message = await _open_fails(backend)
    assert "not a" in message
    assert "database" in message


async def test_a_newer_schema_is_refused_with_the_versions_and_the_fix(backend: Backend) -> None:
    s = backend.make_store()
    await s.open()
    await s.close()
    newer = migrate.latest(backend.name) + 1
    backend.set_meta("schema_version", str(newer))
    message = await _open_fails(backend)
    assert f"schema version {newer}" in message
    assert str(migrate.latest(backend.name)) in message
    assert "upgrade perdure" in message


async def test_perdure_meta_of_another_application_is_refused(backend: Backend) -> None:
    s = backend.make_store()
    await s.open()
    await s.close()
    backend.set_meta("app", "someone-else")
    assert "not a perdure database" in await _open_fails(backend)


# --- the faulty store ---------------------------------------------------------


async def test_an_ambiguous_fault_commits_then_raises(store: Store) -> None:
    faulty = FaultyStore(store, {"ambiguous": 1.0}, seed=1)
    with pytest.raises(StoreUnavailable, match="ambiguous"):
        await faulty.commit([CreateInstance(row("w1"))])
    assert await store.get_instance("w1") == row("w1"), "the batch was committed"
    assert faulty.injected["ambiguous"] == 1


@pytest.mark.parametrize("kind", ["timeout", "busy"])
async def test_timeout_and_busy_faults_write_nothing(store: Store, kind: str) -> None:
    faulty = FaultyStore(store, {kind: 1.0}, seed=1)
    with pytest.raises(StoreUnavailable, match=kind):
        await faulty.commit([CreateInstance(row("w1"))])
    assert await store.get_instance("w1") is None
    with pytest.raises(StoreUnavailable):
        await faulty.get_instance("w1")


async def test_a_disconnect_leaves_the_batch_written_or_not(store: Store) -> None:
    faulty = FaultyStore(store, {"disconnect": 1.0}, seed=3)
    written = 0
    for i in range(40):
        with pytest.raises(StoreUnavailable, match="disconnect"):
            await faulty.commit([CreateInstance(row(f"w{i}"))])
        written += await store.get_instance(f"w{i}") is not None
    assert 0 < written < 40


async def test_resubmitting_after_ambiguous_commits_applies_each_batch_once(store: Store) -> None:
    faulty = FaultyStore(store, {"ambiguous": 0.5, "timeout": 0.2}, seed=11)
    retrying = RetryingStore(faulty, deadline=10.0, base=0.0001, cap=0.001)
    await running(store, "w1")
    for pos in range(20):
        outcome = (await retrying.commit([Append(instance_id="w1", token=1, entries=(entry(pos),))]))[0]
        assert outcome == AppendOutcome(ok=True)
    assert await store.load_journal("w1") == [entry(p) for p in range(20)]
    assert faulty.injected["ambiguous"] > 0
    assert retrying.retries > 0


def test_fault_specs_are_parsed_and_validated() -> None:
    assert parse_faults("default") == {"timeout": 0.01, "ambiguous": 0.01, "disconnect": 0.01, "busy": 0.01}
    assert parse_faults("timeout=0.02, ambiguous=0.5") == {"timeout": 0.02, "ambiguous": 0.5}
    with pytest.raises(InvalidArgument, match="'nope'"):
        parse_faults("nope=0.1")
    with pytest.raises(InvalidArgument, match="not a number"):
        parse_faults("busy=often")
    with pytest.raises(InvalidArgument, match=r"\[0, 1\]"):
        parse_faults("busy=2")


# --- actors ---------------------------------------------------------------------


def invocation(iid: str, actor: str = "Counter/k", **kw: Any) -> InstanceRow:
    return msgspec.structs.replace(row(iid, name="Counter.add", **kw), actor_id=actor)


async def enqueue(store: Store, r: InstanceRow) -> Status | None:
    outcome = await commit1(store, Enqueue(r))
    assert isinstance(outcome, EnqueueOutcome)
    # The actor comes back exactly when the invocation has the turn (no read needed to run it).
    assert (outcome.actor is not None) is (outcome.status not in (None, Status.QUEUED))
    if outcome.actor is not None:
        assert outcome.actor.active == r.id
    return outcome.status


async def end(store: Store, r: InstanceRow, *, state: bytes | None, at: float = NOW + 1) -> None:
    update = InstanceUpdate(status=Status.COMPLETED, updated_at=at, output=b"J1", actor_id=r.actor_id,
                            actor_state=state, state_version=3)  # fmt: skip
    assert await commit1(store, Append(instance_id=r.id, token=r.token, update=update)) == AppendOutcome(
        ok=True
    )


async def test_invocations_of_one_actor_queue_behind_the_one_whose_turn_it_is(store: Store) -> None:
    first = invocation("Counter/k/1", status=Status.RUNNING, owner="ex-1", token=1)
    assert await enqueue(store, first) is Status.RUNNING
    assert await enqueue(store, invocation("Counter/k/2")) is Status.QUEUED
    assert await enqueue(store, invocation("Counter/k/3")) is Status.QUEUED
    assert await enqueue(store, invocation("Counter/other/1", actor="Counter/other")) is Status.PENDING
    assert await enqueue(store, invocation("Counter/k/2")) is None  # the same id: ignored
    # A queued invocation is not ready, whatever its wake-up (and ex-1 is alive).
    await commit1(store, Beat(executor="ex-1", host="h", pid=1, expires_at=LIVE))
    assert [r.id for r in await claim(store)] == ["Counter/other/1"]

    actor = await store.get_actor("Counter/k")
    assert actor is not None
    assert (actor.type, actor.key, actor.active, actor.state, actor.revision) == (
        "Counter",
        "k",
        "Counter/k/1",
        None,
        0,
    )

    await end(store, first, state=b'J{"value":1}')
    actor = await store.get_actor("Counter/k")
    assert actor is not None
    assert (actor.active, actor.state, actor.state_version, actor.revision, actor.invocations) == (
        "Counter/k/2", b'J{"value":1}', 3, 1, 1,
    )  # fmt: skip
    second = await store.get_instance("Counter/k/2")
    assert second is not None
    assert second.status is Status.PENDING
    [claimed] = await claim(store, claim_id="c-2", now=NOW + 2)
    assert claimed.id == "Counter/k/2"
    await end(store, claimed, state=None)  # unchanged state: nothing saved
    actor = await store.get_actor("Counter/k")
    assert actor is not None
    assert (actor.active, actor.state, actor.revision, actor.invocations) == (
        "Counter/k/3",
        b'J{"value":1}',
        1,
        2,
    )


async def test_a_stale_end_of_an_invocation_saves_no_state_and_passes_no_turn(store: Store) -> None:
    first = invocation("Counter/k/1", status=Status.RUNNING, owner="ex-1", token=1)
    await enqueue(store, first)
    await enqueue(store, invocation("Counter/k/2"))
    update = InstanceUpdate(status=Status.COMPLETED, updated_at=NOW, actor_id="Counter/k", actor_state=b"J{}")
    assert await commit1(store, Append(instance_id=first.id, token=9, update=update)) == AppendOutcome(
        ok=False
    )
    actor = await store.get_actor("Counter/k")
    assert actor is not None
    assert (actor.active, actor.state) == ("Counter/k/1", None)


async def test_cancelling_the_invocation_whose_turn_it_is_passes_the_turn(store: Store) -> None:
    await enqueue(store, invocation("Counter/k/1"))
    await enqueue(store, invocation("Counter/k/2"))
    await enqueue(store, invocation("Counter/k/3"))
    assert await commit1(store, RequestCancel(instance_id="Counter/k/3", now=NOW)) is Status.CANCELLED
    assert await commit1(store, RequestCancel(instance_id="Counter/k/1", now=NOW)) is Status.CANCELLED
    actor = await store.get_actor("Counter/k")
    assert actor is not None
    assert actor.active == "Counter/k/2"
    second = await store.get_instance("Counter/k/2")
    assert second is not None
    assert second.status is Status.PENDING


async def test_actors_list_by_type_prefix_and_status_and_their_oplog_pages(store: Store) -> None:
    for aid in ("Counter/alice", "Counter/alfred", "Counter/bob", "Cart/alice"):
        await enqueue(store, invocation(f"{aid}/1", actor=aid))
    await enqueue(store, invocation("Counter/bob/2", actor="Counter/bob"))
    page = await store.list_actors(type="Counter", prefix=None, busy=None, limit=2, cursor=None)
    assert [a.id for a in page.items] == ["Counter/alfred", "Counter/alice"]
    rest = await store.list_actors(type="Counter", prefix=None, busy=None, limit=2, cursor=page.cursor)
    assert ([a.id for a in rest.items], rest.cursor) == (["Counter/bob"], None)
    found = await store.list_actors(type=None, prefix="al", busy=True, limit=10, cursor=None)
    assert [a.id for a in found.items] == ["Cart/alice", "Counter/alfred", "Counter/alice"]
    assert (await store.list_actors(type=None, prefix=None, busy=False, limit=10, cursor=None)).items == []

    oplog = await store.actor_oplog("Counter/bob", limit=1, cursor=None)
    assert [o.id for o in oplog.items] == ["Counter/bob/1"]
    more = await store.actor_oplog("Counter/bob", limit=1, cursor=oplog.cursor)
    assert ([(o.id, o.status, o.method) for o in more.items], more.cursor) == (
        [("Counter/bob/2", Status.QUEUED, "Counter.add")], None,
    )  # fmt: skip
    # Invocations are not workflows: listings of instances leave them out.
    assert (await store.list_instances(status=None, name=None, limit=10, cursor=None)).items == []


async def test_an_actor_is_deleted_with_its_invocations_only_when_idle(store: Store) -> None:
    first = invocation("Counter/k/1", status=Status.RUNNING, owner="ex-1", token=1)
    await enqueue(store, first)
    assert await commit1(store, DeleteActor("Counter/k")) is False
    assert await commit1(store, DeleteActor("Counter/none")) is None
    await end(store, first, state=b'J{"value":1}')
    assert await commit1(store, DeleteActor("Counter/k")) is True
    assert await store.get_actor("Counter/k") is None
    assert await store.get_instance("Counter/k/1") is None
    assert await store.load_journal("Counter/k/1") == []


# --- an actor's mailbox ------------------------------------------------------------


def mail(topic: str, payload: bytes, sender: str, actor: str = "Counter/k") -> Message:
    return Message(target=actor, topic=topic, payload=payload, at=NOW, sender_key=sender)


async def test_a_message_to_an_actor_waits_in_its_mailbox_and_is_taken_once(store: Store) -> None:
    assert await commit1(store, Post(mail("t", b"J1", "client:a"))) is True
    assert await commit1(store, Post(mail("t", b"J1", "client:a"))) is False  # the same sender
    actor = await store.get_actor("Counter/k")  # made by its first message: idle, no state
    assert actor is not None
    assert (actor.type, actor.key, actor.active, actor.state, actor.pending) == (
        "Counter",
        "k",
        None,
        None,
        1,
    )
    await running(store, "sender")
    send = Append(instance_id="sender", token=1, entries=(entry(0),), mail=(mail("t", b"J2", "wf:sender:0"),))
    await commit1(store, send)
    await commit1(store, send)
    assert await store.next_message("Counter/k", "t", mailbox=True) == (1, b"J1")
    assert await store.next_message("Counter/k", "t") is None  # not an instance's messages

    first = invocation("Counter/k/1", status=Status.RUNNING, owner="ex-1", token=1)
    await enqueue(store, first)
    recv = JournalEntry(position=0, kind="recv", name="t", ok=True, result=b"J1")
    taken = Append(instance_id=first.id, token=1, entries=(recv,), consumes=(("t", 1),), mailbox="Counter/k")
    assert await commit1(store, taken) == AppendOutcome(ok=True)
    assert await store.next_message("Counter/k", "t", mailbox=True) == (2, b"J2")
    [listed] = (await store.list_actors(type=None, prefix=None, busy=None, limit=10, cursor=None)).items
    assert listed.pending == 1
    await end(store, first, state=None)
    assert await commit1(store, DeleteActor("Counter/k")) is True
    assert await store.next_message("Counter/k", "t", mailbox=True) is None  # gone with the actor


async def test_a_message_to_an_actor_wakes_its_call_waiting_on_that_topic_only(store: Store) -> None:
    first = invocation("Counter/k/1", status=Status.RUNNING, owner="ex-1", token=1)
    await enqueue(store, first)
    wait = InstanceUpdate(status=Status.WAITING, updated_at=NOW, waiting_topic="t", actor_id="Counter/k")
    await commit1(store, Append(instance_id=first.id, token=1, update=wait))
    await commit1(store, Post(mail("other", b"J1", "client:1")))
    found = await store.get_instance(first.id)
    assert found is not None
    assert (found.status, found.wake_at) == (Status.WAITING, None)
    await commit1(store, Post(mail("t", b"J2", "client:2", actor="Counter/elsewhere")))
    found = await store.get_instance(first.id)
    assert found is not None
    assert found.wake_at is None
    await commit1(store, Post(mail("t", b"J3", "client:3")))
    found = await store.get_instance(first.id)
    assert found is not None
    assert found.wake_at == NOW


async def test_a_message_to_an_actor_whose_call_starts_waiting_always_wakes_it(
    store: Store, other: Store
) -> None:
    """The mailbox's version of the race above: a call unloading to wait on a topic of its
    actor's mailbox, and a client sending on it, on two stores at once."""
    for n in range(40):
        aid = f"Counter/k{n}"
        call = invocation(f"{aid}/1", actor=aid, status=Status.RUNNING, owner="ex-1", token=1)
        await enqueue(store, call)
        wait = InstanceUpdate(status=Status.WAITING, updated_at=NOW, waiting_topic="t", actor_id=aid)
        await asyncio.gather(
            store.commit([Append(instance_id=call.id, token=1, update=wait)]),
            other.commit([Post(mail("t", b"J1", "client:x", actor=aid))]),
        )
        found = await store.get_instance(call.id)
        assert found is not None
        assert found.status is Status.WAITING
        assert found.wake_at is not None, f"{aid}: the message came, the wake-up was lost"


async def test_senders_to_one_mailbox_at_once_each_get_their_own_sequence_number(
    store: Store, other: Store
) -> None:
    await asyncio.gather(
        *(
            (store if i % 2 else other).commit([Post(mail("t", f"J{i}".encode(), f"client:{i}"))])
            for i in range(20)
        )
    )
    actor = await store.get_actor("Counter/k")
    assert actor is not None
    assert actor.pending == 20


# --- direct actor calls ------------------------------------------------------------


def direct(iid: str, revision: int | None, state: bytes | None, actor: str = "Counter/d") -> DirectCall:
    ended = msgspec.structs.replace(
        invocation(iid, actor=actor, status=Status.COMPLETED, wake_at=None), output=b"J1"
    )
    return DirectCall(row=ended, revision=revision, state=state, state_version=3)


async def test_a_direct_call_is_recorded_only_on_an_idle_actor_at_its_revision(store: Store) -> None:
    assert await commit1(store, direct("Counter/d/1", None, b'J{"value":1}')) is True  # creates it
    assert (
        await commit1(store, direct("Counter/d/1", None, b'J{"value":1}')) is None
    )  # retried: the id exists
    assert await commit1(store, direct("Counter/d/2", None, b'J{"value":9}')) is False  # it exists now
    assert await commit1(store, direct("Counter/d/2", 0, b'J{"value":9}')) is False  # a stale revision
    assert await commit1(store, direct("Counter/d/2", 1, None)) is True  # unchanged state: kept
    actor = await store.get_actor("Counter/d")
    assert actor is not None
    assert (actor.state, actor.state_version, actor.revision, actor.invocations, actor.active) == (
        b'J{"value":1}', 3, 1, 2, None,
    )  # fmt: skip
    oplog = (await store.actor_oplog("Counter/d", limit=10, cursor=None)).items
    assert [(e.id, e.status, e.state_size) for e in oplog] == [
        ("Counter/d/1", Status.COMPLETED, len(b'J{"value":1}')),
        ("Counter/d/2", Status.COMPLETED, None),
    ]
    # A call that has the turn makes the actor busy: a direct call is refused until it ends.
    busy = invocation("Counter/d/3", actor="Counter/d", status=Status.RUNNING, owner="ex-1", token=1)
    assert await enqueue(store, busy) is Status.RUNNING
    assert await commit1(store, direct("Counter/d/4", 1, b'J{"value":2}')) is False
    assert await store.get_instance("Counter/d/4") is None  # refused: nothing of it written
    await end(store, busy, state=None)
    assert await commit1(store, direct("Counter/d/4", 1, b'J{"value":2}')) is True
    actor = await store.get_actor("Counter/d")
    assert actor is not None
    assert (actor.state, actor.revision, actor.invocations) == (b'J{"value":2}', 2, 4)


async def test_actors_are_read_many_at_once(store: Store) -> None:
    assert await commit1(store, direct("Counter/a/1", None, b"J1", actor="Counter/a")) is True
    assert await commit1(store, direct("Counter/b/1", None, b"J2", actor="Counter/b")) is True
    found = await store.get_actors(["Counter/b", "Counter/none", "Counter/a"])
    assert sorted((a.id, a.state) for a in found) == [("Counter/a", b"J1"), ("Counter/b", b"J2")]
    assert await store.get_actors([]) == []
