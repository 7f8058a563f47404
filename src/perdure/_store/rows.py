"""Rows to and from SQL, shared by both stores: the same columns in the same order.

Both dialects' queries.sql select instance and schedule columns in one order and
take the same parameters, so converting and the append logic (fence, then a few
set-wise statements) are written once here; each store only runs the statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from operator import itemgetter
from typing import Any

import msgspec

from perdure._model.errors import InvalidArgument
from perdure._model.records import (
    SHARDS,
    TERMINAL,
    ActorRow,
    Append,
    AppendOutcome,
    DirectCall,
    InstanceRow,
    InstanceUpdate,
    Message,
    Op,
    OplogRow,
    Replay,
    RetryState,
    ScheduleRow,
    Status,
    shard_of,
)

Rows = list[tuple[Any, ...]] | list[dict[str, Any]]


def instance_row(values: Sequence[Any]) -> InstanceRow:
    """An ``InstanceRow`` from the column order of every instance query; seq (last) stays internal."""
    (iid, name, status, inp, out, err, created, updated, wake, owner, token, recov, park, cancel, topic,
     run, run_input, parent_id, parent_close, deadline, actor_id, _seq) = values  # fmt: skip
    return InstanceRow(
        id=iid, name=name, status=Status(status), input=inp, output=out, error=err,
        created_at=created, updated_at=updated, wake_at=wake, owner=owner, token=token,
        recoveries=recov, park_reason=park, cancel_requested=bool(cancel), waiting_topic=topic,
        run=run, run_input=run_input, parent_id=parent_id, parent_close=parent_close, deadline=deadline,
        actor_id=actor_id,
    )  # fmt: skip


def actor_row(values: Sequence[Any]) -> ActorRow:
    """An ``ActorRow`` from the column order of every actor query (``actor_get`` and
    ``actor_list`` add the count of messages pending in its mailbox)."""
    (aid, type_, key, state, version, revision, active, invocations, created, updated, *pending) = values
    return ActorRow(
        id=aid, type=type_, key=key, state=None if state is None else bytes(state), state_version=version,
        revision=revision, active=active, invocations=invocations, created_at=created, updated_at=updated,
        pending=int(pending[0]) if pending else 0,
    )  # fmt: skip


def oplog_row(values: Sequence[Any]) -> OplogRow:
    """An ``OplogRow`` from ``actor_oplog``'s columns; seq (last) stays internal."""
    (iid, method, status, inp, out, err, created, updated, size, _seq) = values
    return OplogRow(
        id=iid, method=method, status=Status(status), input=bytes(inp),
        output=None if out is None else bytes(out), error=None if err is None else bytes(err),
        created_at=created, updated_at=updated, state_size=size,
    )  # fmt: skip


PACK_SIZE = 256
"""Journal entries per pack (``journal_packs``): each full run of positions
``k * PACK_SIZE`` to ``(k + 1) * PACK_SIZE - 1`` is packed as its last entry is recorded."""
PACK_MAX_BYTES = 256 * 1024
"""Runs whose results add up to more are not packed: a pack copies the results, and large
ones cost more to store twice than to read as rows."""


class _Pack(msgspec.Struct, array_like=True, frozen=True):
    """A pack's blob: its distinct operations (``kinds[i]``, ``names[i]``), then for each
    entry the index of its operation, its ok, result and attempts."""

    kinds: list[str]
    names: list[str]
    ops: list[int]
    oks: list[bool]
    results: list[bytes]
    attempts: list[int]


_pack_decoder = msgspec.msgpack.Decoder(_Pack)


def ends_pack(position: int) -> bool:
    """Whether ``position`` is a pack's last: recording it may complete that pack."""
    return position % PACK_SIZE == PACK_SIZE - 1


def chunk_ends(entries: Sequence[tuple[Any, ...]]) -> list[tuple[str, int, int]]:
    """(instance, first, last) of the packs that ``journal_insert``'s ``entries`` may complete:
    those with an entry at a pack's last position."""
    return [(e[0], e[1] - PACK_SIZE + 1, e[1]) for e in entries if ends_pack(e[1])]


def pack(chunk: Sequence[Sequence[Any]]) -> bytes | None:
    """The pack of ``chunk`` (``journal_chunk``'s rows: kind, name, ok, result, attempts), or
    ``None`` if it is not one: not full (an earlier position is not recorded yet), or too
    large (see ``PACK_MAX_BYTES``)."""
    if len(chunk) != PACK_SIZE or sum(len(r[3]) for r in chunk) > PACK_MAX_BYTES:
        return None
    ops: dict[tuple[str, str], int] = {}
    index = [ops.setdefault((r[0], r[1]), len(ops)) for r in chunk]
    _, _, oks, results, attempts = zip(*chunk, strict=True)
    return msgspec.msgpack.encode(
        _Pack(
            [k for k, _ in ops],
            [n for _, n in ops],
            index,
            [bool(o) for o in oks],
            list(results),
            list(attempts),
        )
    )


def usable_packs(packs: Sequence[tuple[int, bytes]]) -> list[_Pack]:
    """Of ``journal_packs``' rows, the packs replay uses, decoded: those contiguous from
    position 0, each of ``PACK_SIZE`` entries. After a missing or unreadable one (a pack is
    a copy of rows), rows are read."""
    used: list[_Pack] = []
    for first, data in packs:
        if first != len(used) * PACK_SIZE:
            break
        try:
            pk = _pack_decoder.decode(data)
        except msgspec.MsgspecError:
            break
        sizes = {len(pk.ops), len(pk.oks), len(pk.results), len(pk.attempts)}
        if (
            sizes != {PACK_SIZE}
            or len(pk.kinds) != len(pk.names)
            or not 0 <= min(pk.ops) <= max(pk.ops) < len(pk.kinds)
        ):
            break
        used.append(pk)
    return used


def replay(
    packs: Sequence[_Pack], rest: Sequence[Any], span: Sequence[Any], retries: Sequence[Any]
) -> Replay:
    """A ``Replay`` from the ``usable_packs``, ``rest`` (``journal_replay``'s rows from the
    first position they leave out), ``journal_span``'s row and ``retries_load``'s rows."""
    kinds: list[str] = []
    names: list[str] = []
    oks: list[int] = []
    results: list[bytes] = []
    attempts: list[int] = []
    for pk in packs:
        if len(pk.kinds) == 1:  # one operation throughout: a loop of the same step
            kinds += pk.kinds * len(pk.ops)
            names += pk.names * len(pk.ops)
        else:  # two operations or more, so two entries or more: itemgetter gives a tuple
            pick = itemgetter(*pk.ops)
            kinds += pick(pk.kinds)
            names += pick(pk.names)
        oks += pk.oks
        results += pk.results
        attempts += pk.attempts
    if rest:
        k, n, o, r, a = zip(*rest, strict=True)
        kinds += k
        names += n
        oks += o
        results += r
        attempts += a
    return Replay(
        kinds=kinds, names=names, oks=oks, results=results, attempts=attempts, first=span[0], last=span[1],
        retries=[RetryState(position=p, attempts=a, last_error=err, next_at=n) for p, a, err, n in retries],
    )  # fmt: skip


def schedule_row(values: Sequence[Any]) -> ScheduleRow:
    (sid, workflow, inp, cron, every, tz, overlap, catchup, paused, next_at, buffered, last, created,
     updated) = values  # fmt: skip
    return ScheduleRow(
        id=sid, workflow=workflow, input=inp, cron=cron, every=every, timezone=tz, overlap=overlap,
        catchup=catchup, paused=bool(paused), next_at=next_at, buffered_at=buffered,
        last_instance=last, created_at=created, updated_at=updated,
    )  # fmt: skip


def shard_move(params: dict[str, Any], live: int, held: int) -> tuple[str, dict[str, Any]] | None:
    """For ``LeaseShards``: the statement (``shards_release`` or ``shards_take``) and its
    parameters that bring an executor holding ``held`` shards to an even share among ``live``
    executors (ceil(SHARDS / live)); ``None`` if it holds its share. ``params``: executor,
    now and expires_at."""
    share = -(-SHARDS // max(1, live))
    if held == share:
        return None
    query = "shards_release" if held > share else "shards_take"
    return query, {**params, "count": abs(held - share), "share": share}


def insert_params(r: InstanceRow) -> tuple[Any, ...]:
    """The parameters of ``instance_insert``."""
    return (r.id, r.name, r.status.value, r.input, r.output, r.error, r.created_at, r.updated_at,
            r.wake_at, r.owner, r.token, r.recoveries, r.park_reason, int(r.cancel_requested),
            r.parent_id, r.parent_close, r.deadline, r.actor_id, shard_of(r))  # fmt: skip


def direct_params(op: DirectCall) -> dict[str, Any]:
    """The parameters of ``actor_direct_update`` and ``actor_direct_create``."""
    actor = op.row.actor_id
    assert actor is not None
    type_, key = actor.split("/", 1)
    changed = op.state is not None
    return {
        "actor": actor, "type": type_, "key": key, "state": op.state,
        "version": op.state_version if changed else None, "revision": op.revision,
        "new_revision": (op.revision or 0) + changed, "now": op.row.updated_at,
    }  # fmt: skip


def message_params(m: Message) -> dict[str, Any]:
    """The parameters of ``message_insert`` and ``message_wake``."""
    return {
        "target": m.target,
        "topic": m.topic,
        "payload": m.payload,
        "sender_key": m.sender_key,
        "now": m.at,
    }


def mail_params(m: Message) -> dict[str, Any]:
    """The parameters of ``mailbox_open``, ``mailbox_insert`` and ``mailbox_wake``: ``m.target``
    is an actor id, ``type/key``."""
    type_, key = m.target.split("/", 1)
    return {**message_params(m), "actor": m.target, "type": type_, "key": key}


def parse_key_cursor(cursor: str | None) -> str:
    """The id a listing by id continues after."""
    if cursor is None:
        return ""
    if not isinstance(cursor, str) or not cursor.startswith("k"):
        raise InvalidArgument(f"invalid cursor {cursor!r}; pass back the cursor a listing returned")
    return cursor[1:]


def parse_cursor(cursor: str | None, *, first: int = 2**62) -> int:
    """The seq a listing continues from (``first`` when it starts)."""
    if cursor is None:
        return first
    if not isinstance(cursor, str) or not cursor.startswith("s") or not cursor[1:].isdigit():
        raise InvalidArgument(f"invalid cursor {cursor!r}; pass back the cursor a listing returned")
    return int(cursor[1:])


def entries_only(op: Append) -> bool:
    """Whether ``op`` holds journal entries and nothing else: a step's record, the hot path.
    Compared whole, so that a field added to ``Append`` is not missed."""
    return op == Append(instance_id=op.instance_id, token=op.token, entries=op.entries)


def lone_entry(op: Op) -> tuple[Any, ...] | None:
    """If ``op`` is a step's record alone (an append of one journal entry and nothing else),
    the parameters of the one statement that writes it fenced (``journal_insert_fenced``,
    ``append_entry``): the instance's id, the entry's columns, the claim token. Else None."""
    if not isinstance(op, Append) or len(op.entries) != 1 or not entries_only(op):
        return None
    e = op.entries[0]
    return (op.instance_id, e.position, e.kind, e.name, int(e.ok), e.result, e.input, e.attempts,
            e.started_at, e.ended_at, op.token)  # fmt: skip


def plain_end(batch: Sequence[Op]) -> tuple[tuple[Any, ...] | None, Append] | None:
    """If ``batch`` is an instance's end that has nothing else to do (it closes no children,
    wakes no parent, clears no retry state, ends no actor call or run, sends nothing), alone
    or after the record of the step before it (deferred to share the commit, and not the
    last of a pack): that record's parameters (``lone_entry``; None if alone) and the end.
    Else None. Stores write it in a statement or two fenced in SQL (``end_entry``,
    ``end_update``)."""
    if not 1 <= len(batch) <= 2 or any(type(op) is not Append for op in batch):
        return None
    last = batch[-1]
    assert isinstance(last, Append)
    u = last.update
    if (
        u is None
        or u.status not in TERMINAL
        or u.close_children
        or u.wake_parent
        or u.clear_retries
        or u.actor_id is not None
        or u.new_run_input is not None
        or last.entries
        or not entries_only(msgspec.structs.replace(last, update=None))
    ):
        return None
    if len(batch) == 1:
        return None, last
    entry = lone_entry(batch[0])
    # (instance, position, ..., token): the same instance and token as the end's
    if entry is None or ends_pack(entry[1]) or (entry[0], entry[-1]) != (last.instance_id, last.token):
        return None
    return entry, last


def end_params(end: Append) -> tuple[Any, ...]:
    """The row's new values of a plain end, then its id and claim token (``end_update``)."""
    u = end.update
    assert u is not None
    return (u.status.value, u.updated_at, u.output, u.error, u.wake_at, u.owner, u.park_reason,
            u.waiting_topic, end.instance_id, end.token)  # fmt: skip


class AppendRows:
    """The rows of a run of appends, gathered per statement so each runs once."""

    def __init__(self) -> None:
        self.entries: list[tuple[Any, ...]] = []
        self.retries: list[tuple[Any, ...]] = []
        self.clears: list[tuple[str]] = []
        self.updates: list[tuple[Any, ...]] = []
        self.messages: list[dict[str, Any]] = []
        self.consumes: list[tuple[str, str, int]] = []
        self.mail: list[dict[str, Any]] = []
        self.mail_taken: list[tuple[str, str, int]] = []
        self.mail_waits: set[str] = set()
        """Actors one of whose calls starts waiting for a message (see ``statements``)."""
        self.events: list[tuple[str, str, bytes, float]] = []
        self.waiting: list[dict[str, Any]] = []
        self.new_runs: list[dict[str, Any]] = []
        self.children: list[tuple[Any, ...]] = []
        self.invocations: list[InstanceRow] = []
        """Actor calls to enqueue (see each store's ``_enqueue``), before the statements run."""
        self.closing: list[dict[str, Any]] = []
        """Instances that end and may have children to close."""
        self.ended_children: list[dict[str, Any]] = []
        """Instances that end and may have a parent to wake."""
        self.saves: list[dict[str, Any]] = []
        self.turns: list[dict[str, Any]] = []
        self.entries_only = True
        """Only journal entries so far: a step recorded, the hot path (see ``statements``)."""

    def add(self, op: Append) -> None:
        iid = op.instance_id
        self.entries.extend(
            (
                iid,
                e.position,
                e.kind,
                e.name,
                int(e.ok),
                e.result,
                e.input,
                e.attempts,
                e.started_at,
                e.ended_at,
            )
            for e in op.entries
        )
        if entries_only(op):
            return
        self.entries_only = False
        self.retries.extend((iid, r.position, r.attempts, r.last_error, r.next_at) for r in op.retries)
        self.messages.extend(message_params(m) for m in op.sends)
        if op.mailbox is None:
            self.consumes.extend((iid, topic, seq) for topic, seq in op.consumes)
        else:
            self.mail_taken.extend((op.mailbox, topic, seq) for topic, seq in op.consumes)
        self.mail.extend(mail_params(m) for m in op.mail)
        self.events.extend((iid, key, value, at) for key, value, at in op.events)
        for child in op.children:
            if child.actor_id is None:
                self.children.append(insert_params(child))
            else:
                self.invocations.append(child)
        if op.update is not None:
            self._add_update(iid, op.token, op.update)

    def _add_update(self, iid: str, token: int, u: InstanceUpdate) -> None:
        if u.clear_retries:
            self.clears.append((iid,))
        if u.status is Status.WAITING:
            self.waiting.append({"id": iid, "now": u.updated_at})
            if u.actor_id is not None and u.waiting_topic is not None:
                self.mail_waits.add(u.actor_id)
        if u.status in TERMINAL:
            if u.close_children:
                self.closing.append({"id": iid, "now": u.updated_at})
            if u.wake_parent:
                self.ended_children.append({"id": iid, "now": u.updated_at})
        if u.actor_id is not None and u.status in TERMINAL:
            turn = {"id": iid, "actor": u.actor_id, "now": u.updated_at}
            if u.actor_state is not None:
                self.saves.append({**turn, "state": u.actor_state, "version": u.state_version,
                                   "size": len(u.actor_state)})  # fmt: skip
            self.turns.append(turn)
        if u.new_run_input is not None:
            self.new_runs.append({"id": iid, "now": u.updated_at, "input": u.new_run_input})
        self.updates.append(
            (u.status.value, u.updated_at, u.output, u.error, u.wake_at, u.owner, u.park_reason,
             u.waiting_topic, iid, token)
        )  # fmt: skip

    def statements(self, *, lock: bool = False) -> list[tuple[str, Rows]]:
        """(query name, rows) in the order they must run; statements with no rows left out.

        ``lock``: lock the instances a message or a child's end wakes first (``message_lock``,
        ``parent_lock``): PostgreSQL, where writers run concurrently, so the wake and the
        target's start of its wait cannot miss each other. An actor's mailbox takes turns on
        the actor's row: its senders (one sequence per topic) and its call that starts waiting
        lock it, in id order, before the messages go in and before the wait's recheck.
        """
        if self.entries_only:
            return [("journal_insert", self.entries)] if self.entries else []
        mail_locks = [{"actor": a} for a in sorted({m["actor"] for m in self.mail} | self.mail_waits)]
        order: list[tuple[str, Rows]] = [
            ("instance_insert", self.children),
            ("journal_insert", self.entries),
            ("retry_upsert", self.retries),
            ("retries_clear", self.clears),  # after the upserts: an ended instance keeps none
            ("instance_update", self.updates),
            *((("message_lock", self.messages),) if lock else ()),
            ("message_insert", self.messages),
            ("message_wake", self.messages),
            ("message_consume", self.consumes),
            ("mailbox_consume", self.mail_taken),
            ("mailbox_open", self.mail),
            *((("actor_lock", mail_locks),) if lock else ()),
            ("mailbox_insert", self.mail),
            ("mailbox_wake", self.mail),
            ("event_set", self.events),
            # After the updates: a message or cancel that came before the wait began wakes it.
            ("waiting_recheck", self.waiting),
            ("children_close", self.closing),
            *((("parent_lock", self.ended_children),) if lock else ()),
            ("parent_wake", self.ended_children),
            # An actor call's end: its state (if changed), then the next call's turn, computed
            # once the actor's row is locked (PostgreSQL: so that it sees every queued call).
            *((("actor_lock", self.turns),) if lock else ()),
            ("actor_save", self.saves),
            ("invocation_state_size", self.saves),
            ("actor_next_turn", self.turns),
            ("actor_wake", self.turns),
            # Continue-as-new, last: the ending run's journal (this batch's entries too) goes.
            ("run_archive", self.new_runs),
            ("run_clear_journal", self.new_runs),
            ("run_clear_packs", self.new_runs),
            ("run_clear_retries", self.new_runs),
            ("run_next", self.new_runs),
        ]
        return [(name, rows) for name, rows in order if rows]


def fence(
    ops: Sequence[Append], fences: Mapping[str, tuple[int, Any]]
) -> tuple[list[AppendOutcome], AppendRows]:
    """Outcomes of appends given ``{id: (token, cancel_requested)}``, and the rows of those whose
    token is current; a stale one writes nothing."""
    outcomes: list[AppendOutcome] = []
    rows = AppendRows()
    for op in ops:
        found = fences.get(op.instance_id)
        if found is None or found[0] != op.token:
            outcomes.append(AppendOutcome(ok=False))
        else:
            outcomes.append(AppendOutcome(ok=True, cancel_requested=bool(found[1])))
            rows.add(op)
    return outcomes, rows
