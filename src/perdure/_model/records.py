"""Records that cross the store boundary: rows, journal entries and batch operations.

A batch is a list of operations committed in one transaction; ``Store.commit``
answers each with an outcome, in order. Every operation is safe to submit twice
(a commit whose acknowledgement was lost is retried): creates and journal
appends are insert-or-ignore, updates set values, claims carry a claim id.
"""

from __future__ import annotations

import enum
import zlib

import msgspec


class Status(enum.StrEnum):
    """Where an instance stands. Terminal: completed, failed, cancelled."""

    PENDING = "pending"
    """Created, not yet claimed by an executor."""
    RUNNING = "running"
    """Claimed by an executor and loaded."""
    WAITING = "waiting"
    """Unloaded until ``wake_at`` (a retry backoff, later sleeps)."""
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PARKED = "parked"
    """Stopped with a recorded reason (non-determinism, poison); idle until resumed."""
    QUEUED = "queued"
    """An actor invocation waiting in the actor's inbox for the ones before it to end."""


TERMINAL = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class InstanceRow(msgspec.Struct, frozen=True, kw_only=True):
    """One workflow run as stored."""

    id: str
    name: str
    status: Status
    input: bytes
    created_at: float
    updated_at: float
    output: bytes | None = None
    error: bytes | None = None
    wake_at: float | None = None
    owner: str | None = None
    token: int = 0
    recoveries: int = 0
    park_reason: str | None = None
    cancel_requested: bool = False
    waiting_topic: str | None = None
    """The message topic a waiting instance waits on, if any."""
    run: int = 0
    """How many times it continued as new."""
    run_input: bytes | None = None
    """The current run's input, if it continued as new (``input`` stays the first)."""
    parent_id: str | None = None
    """The workflow that started this one as its child."""
    parent_close: str | None = None
    """What the parent's end does to this child: terminate, request_cancel or abandon."""
    deadline: float | None = None
    """Execution timeout: past it the instance fails (epoch seconds)."""
    actor_id: str | None = None
    """Set for an actor invocation: the actor (``type/key``) whose method it runs."""


class JournalEntry(msgspec.Struct, frozen=True):
    """The recorded outcome of one durable operation at one position.

    Not keyword-only: a history is built of these straight from rows (replay reads its
    journal as columns instead, see ``Replay``).
    """

    position: int
    kind: str
    """Operation kind: ``step``, ``now``, ``random``, ``uuid``."""
    name: str
    """The step's registered name; the helper's name for the others."""
    ok: bool
    """True if ``result`` holds a value, False if it holds a recorded error."""
    result: bytes
    input: bytes | None = None
    attempts: int = 1
    started_at: float = 0.0
    ended_at: float = 0.0


class RetryState(msgspec.Struct, frozen=True, kw_only=True):
    """A step that failed and waits for its next attempt."""

    position: int
    attempts: int
    """Attempts made so far."""
    last_error: bytes
    next_at: float
    """When the next attempt may start (epoch seconds)."""


class Replay(msgspec.Struct, frozen=True, kw_only=True):
    """What loading an instance for a run reads of its journal, in one read: of each entry
    what replay needs, by position, as columns (recovery reads ten thousands of entries;
    the inputs and times are for people to read)."""

    kinds: list[str]
    names: list[str]
    oks: list[int]
    """True (or 1) for a value, false (or 0) for a recorded error."""
    results: list[bytes]
    attempts: list[int]
    first: int | None = None
    """The lowest and highest recorded positions: replay checks they are 0 and
    ``len(kinds) - 1`` (``None`` with no entries)."""
    last: int | None = None
    retries: list[RetryState] = msgspec.field(default_factory=list)


class InstanceUpdate(msgspec.Struct, frozen=True, kw_only=True):
    """New values for an instance's row; ``owner=None`` releases the claim."""

    status: Status
    updated_at: float
    output: bytes | None = None
    error: bytes | None = None
    wake_at: float | None = None
    owner: str | None = None
    park_reason: str | None = None
    waiting_topic: str | None = None
    clear_retries: bool = False
    new_run_input: bytes | None = None
    """Continue as new with this input: the run is archived and its journal dropped."""
    actor_id: str | None = None
    """An actor invocation that ends: the actor's next invocation gets its turn."""
    actor_state: bytes | None = None
    """With ``actor_id``: the actor's new state (``None``: unchanged), saved with the end."""
    state_version: int = 0
    """The code version of the actor class that wrote ``actor_state``."""
    close_children: bool = True
    """An end: close the instance's children (by their ``parent_close``). ``False`` only when
    the writer knows it has none (it spares the store a statement)."""
    wake_parent: bool = True
    """An end: wake the instance's parent if it waits for it. ``False`` only when the writer
    knows it has no parent."""


class Message(msgspec.Struct, frozen=True, kw_only=True):
    """A message for instance ``target`` on ``topic``; sequence numbers follow commit order."""

    target: str
    topic: str
    payload: bytes
    at: float
    """When it was sent (epoch seconds)."""
    sender_key: str | None = None
    """Deduplicates: a second message from the same key to the same target is dropped."""


# --- operations -------------------------------------------------------------


class CreateInstance(msgspec.Struct, frozen=True, tag=True):
    """Insert the row unless the id exists. Outcome: ``True`` if inserted."""

    row: InstanceRow


class Append(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Journal entries, retry states and an update for an instance, fenced by ``token``.

    Outcome: an ``AppendOutcome``; when the token is stale nothing is written.
    """

    instance_id: str
    token: int
    entries: tuple[JournalEntry, ...] = ()
    retries: tuple[RetryState, ...] = ()
    update: InstanceUpdate | None = None
    sends: tuple[Message, ...] = ()
    """Messages sent by this instance, delivered with the journal entry that sends them."""
    consumes: tuple[tuple[str, int], ...] = ()
    """(topic, seq) of messages this instance received, consumed with their journal entry."""
    events: tuple[tuple[str, bytes, float], ...] = ()
    """(key, value, at) of events published with their journal entry."""
    children: tuple[InstanceRow, ...] = ()
    """Child instances started by this entry (insert-or-ignore, like ``CreateInstance``)."""
    mail: tuple[Message, ...] = ()
    """Messages sent by this instance to actors' mailboxes (``target``: an actor id), delivered
    with the journal entry that sends them, like ``Post``."""
    mailbox: str | None = None
    """The actor whose mailbox ``consumes`` come from (a call of it received them); ``None``:
    the instance's own messages."""


class AppendOutcome(msgspec.Struct, frozen=True):
    ok: bool
    """False if the token was stale: this executor lost the instance."""
    cancel_requested: bool = False


class Claim(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Claim up to ``limit`` ready instances for ``executor``. Outcome: the claimed rows.

    Ready: pending or waiting with ``wake_at <= now``, or running under an
    executor whose lease has expired (recovery: ``recoveries`` is incremented);
    and in a shard ``executor`` leases at ``lease_now`` (see ``LeaseShards``), or overdue.
    A retried claim with the same ``claim_id`` returns what the first one took.
    """

    executor: str
    claim_id: str
    now: float
    """Durable time: instances with ``wake_at <= now`` are due."""
    lease_now: float
    """Real time: executors whose lease expired before it are dead."""
    limit: int
    overdue: float | None = None
    """Durable time: pending or waiting instances due at or before it are claimed in any
    shard (their shard's executor is full or slow); None: only in the shards leased."""


class Beat(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Register or renew an executor's lease until ``expires_at``. Outcome: None."""

    executor: str
    host: str
    pid: int
    expires_at: float


class ExpireExecutor(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Mark an executor dead (expired lease, or its lock seen free) and free its shards.
    Outcome: None."""

    executor: str


SHARDS = 64
"""Instances map to this many shards (``shard_of``); schema 10 made their leases."""


def shard_of(row: InstanceRow) -> int:
    """The shard of an instance: its actor's for an actor's call (so an actor's calls go to
    the executor where it is likely resident), else its own id's."""
    return zlib.crc32((row.actor_id or row.id).encode()) % SHARDS


class LeaseShards(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Renew ``executor``'s shard leases until ``expires_at`` and even out its share: with L
    executors whose lease holds at ``now``, each should hold ceil(SHARDS / L). One holding
    more gives the excess up (highest first); one holding fewer takes shards that are free,
    expired, or held by an executor whose lease does not hold, then the excess of those
    holding more (so one that joins gets its share at once; they learn at their next beat).
    Outcome: the shards it holds now, as a sorted tuple. Goes after its ``Beat`` in a
    batch, so that it counts itself."""

    executor: str
    now: float
    """Real time: leases that expired before it do not hold."""
    expires_at: float


class RequestCancel(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Ask an instance to cancel; unowned waiting or pending ones are cancelled at once.

    Outcome: the status after the request, or ``None`` if no such instance.
    """

    instance_id: str
    now: float


class Resume(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Make a parked instance pending again. Outcome: the status before, or ``None``."""

    instance_id: str
    now: float


class ScheduleRow(msgspec.Struct, frozen=True, kw_only=True):
    """A schedule as stored."""

    id: str
    workflow: str
    input: bytes
    cron: str | None
    every: float | None
    timezone: str
    overlap: str
    catchup: str
    paused: bool
    next_at: float
    buffered_at: float | None
    """A tick held back (overlap ``buffer_one``) until the previous run ends."""
    last_instance: str | None
    created_at: float
    updated_at: float


class CreateSchedule(msgspec.Struct, frozen=True, tag=True):
    """Insert the schedule unless the id exists. Outcome: ``True`` if inserted."""

    row: ScheduleRow


class FireSchedule(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Start a schedule's ticks and move it on, if nobody did since it was read.

    Outcome: ``True`` if this call won (its instances were created, insert-or-ignore).
    """

    schedule_id: str
    expected_next_at: float
    expected_buffered_at: float | None
    new_next_at: float
    buffered_at: float | None
    starts: tuple[InstanceRow, ...]
    now: float


class PauseSchedule(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """Pause or resume; resuming may set a new ``next_at``. Outcome: ``True`` if it exists."""

    schedule_id: str
    paused: bool
    next_at: float | None
    now: float


class DeleteSchedule(msgspec.Struct, frozen=True, tag=True):
    """Outcome: ``True`` if it existed."""

    schedule_id: str


class ActorRow(msgspec.Struct, frozen=True, kw_only=True):
    """An actor as stored."""

    id: str
    type: str
    key: str
    state: bytes | None
    """The snapshot of its attributes after its last invocation that changed them."""
    state_version: int
    """The code version of the class that wrote ``state``."""
    revision: int
    """How many snapshots were saved: a resident copy of this revision is current."""
    active: str | None
    """The invocation whose turn it is (running, waiting, or about to run)."""
    invocations: int
    """Invocations ended so far."""
    created_at: float
    updated_at: float
    pending: int = 0
    """Messages waiting in its mailbox (counted by the reads that list or show actors only)."""


class Enqueue(msgspec.Struct, frozen=True, tag=True):
    """Put an actor invocation (``row.actor_id`` set) in its actor's inbox, creating the
    actor if needed, unless the id exists. It keeps ``row``'s status when the actor is idle
    and becomes ``queued`` behind the invocation whose turn it is otherwise.

    Outcome: an ``EnqueueOutcome``.
    """

    row: InstanceRow


class EnqueueOutcome(msgspec.Struct, frozen=True):
    status: Status | None
    """The status it was stored with; ``None`` if the id existed already."""
    actor: ActorRow | None = None
    """When it got the turn at once: the actor as it stands (no other call can change it
    before this one ends), so that running it needs no read."""


class DirectCall(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """An actor call that ran at once on an idle actor, recorded whole: the ended invocation
    ``row`` (terminal, ``row.actor_id`` set), the actor's new state (``None``: unchanged) and
    one more invocation ended, only if no call has the actor's turn and its revision is still
    ``revision`` (``None``: the actor must not exist yet). Otherwise nothing is written.

    Outcome: ``True`` if recorded, ``False`` if the actor moved on, ``None`` if the id existed
    (a retried commit whose first attempt landed).
    """

    row: InstanceRow
    revision: int | None
    state: bytes | None
    state_version: int


class DeleteActor(msgspec.Struct, frozen=True, tag=True):
    """Delete an actor, its state and its invocations' records, unless one is pending or
    running. Outcome: ``True`` if deleted, ``False`` if busy, ``None`` if no such actor."""

    actor_id: str


class ActorRows(msgspec.Struct, frozen=True):
    items: list[ActorRow]
    cursor: str | None


class OplogRow(msgspec.Struct, frozen=True, kw_only=True):
    """One invocation of an actor, as its oplog shows it."""

    id: str
    method: str
    status: Status
    input: bytes
    output: bytes | None
    error: bytes | None
    created_at: float
    updated_at: float
    state_size: int | None


class OplogRows(msgspec.Struct, frozen=True):
    items: list[OplogRow]
    cursor: str | None


class Send(msgspec.Struct, frozen=True, tag=True, kw_only=True):
    """A message from outside any instance. Outcome: the target's status (delivered only if
    not terminal), ``True`` if its sender key was delivered before the target ended (a
    retried commit, or a repeated key), or ``None`` if there is no such instance."""

    message: Message


class Post(msgspec.Struct, frozen=True, tag=True):
    """A message from outside any instance into the mailbox of actor ``message.target``
    (``type/key``), which is created if it does not exist yet. Outcome: ``True`` if delivered,
    ``False`` if its sender key had delivered before (a retried commit, or a repeated key)."""

    message: Message


Op = (
    CreateInstance
    | Append
    | Claim
    | Beat
    | ExpireExecutor
    | LeaseShards
    | RequestCancel
    | Resume
    | Send
    | CreateSchedule
    | FireSchedule
    | PauseSchedule
    | DeleteSchedule
    | Enqueue
    | DirectCall
    | DeleteActor
    | Post
)
Outcome = bool | AppendOutcome | EnqueueOutcome | list[InstanceRow] | tuple[int, ...] | Status | None


class RunRow(msgspec.Struct, frozen=True, kw_only=True):
    """A finished run of an instance that continued as new."""

    run: int
    input: bytes
    steps: int
    ended_at: float


class ExecutorRow(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    host: str
    pid: int
    expires_at: float
    shards: int = 0
    """How many shards it leases."""


class Page(msgspec.Struct, frozen=True):
    """One page of a listing; pass ``cursor`` back to get the next one (None: no more)."""

    items: list[InstanceRow]
    cursor: str | None
