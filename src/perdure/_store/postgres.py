"""The PostgreSQL store: psycopg 3, async, a bounded connection pool; many executors share it.

Writes: ``commit`` runs a batch as one transaction of few round trips whatever
its size: the fence read, then every write and the COMMIT as one multi-statement
query (parameters bound client-side). A batch of one operation that is one
statement (a step's record, a claim, a start or an actor call made claimed:
``_alone``) runs on its own instead, prepared and bound server-side, in
autocommit: one round trip and the least client CPU, the hot path of sequential
steps. Appends lock their instances' rows (``FOR NO KEY UPDATE``) before checking
the claim token, so a concurrent claim, which moves the token, waits or skips
them: no stale write lands. Claims take ready rows with ``FOR UPDATE SKIP
LOCKED``, so executors claiming at once take disjoint sets. Commits that make
work ready for another executor send a NOTIFY (an actor call's end only if it
passes the turn to a queued call: ``actor_wake``); ``subscribe`` listens on its
own connection and calls back, polling staying the fallback.

Errors: connection loss, admin shutdown, serialization failures and deadlocks
are ``StoreUnavailable`` (the RetryingStore resubmits; every operation is
idempotent); the rest is permanent. Credentials never appear in ``url`` or in
messages.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from itertools import starmap
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import msgspec
import psycopg
from psycopg import errors, sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from perdure._model import crashpoints
from perdure._model.errors import (
    IncompatibleDatabase,
    InvalidArgument,
    StoreError,
    StoreIntegrityError,
    StoreUnavailable,
)
from perdure._model.records import (
    TERMINAL,
    ActorRow,
    ActorRows,
    Append,
    AppendOutcome,
    Beat,
    Claim,
    CreateInstance,
    CreateSchedule,
    DeleteActor,
    DeleteSchedule,
    DirectCall,
    Enqueue,
    EnqueueOutcome,
    ExecutorRow,
    ExpireExecutor,
    FireSchedule,
    InstanceRow,
    JournalEntry,
    LeaseShards,
    Op,
    OplogRows,
    Outcome,
    Page,
    PauseSchedule,
    Post,
    Replay,
    RequestCancel,
    Resume,
    RunRow,
    ScheduleRow,
    Send,
    Status,
    shard_of,
)
from perdure._store import migrate
from perdure._store.prepared import Prepared, Readable
from perdure._store.rows import (
    PACK_SIZE,
    AppendRows,
    actor_row,
    direct_params,
    end_params,
    ends_pack,
    fence,
    insert_params,
    instance_row,
    lone_entry,
    mail_params,
    message_params,
    oplog_row,
    pack,
    parse_cursor,
    parse_key_cursor,
    plain_end,
    replay,
    schedule_row,
    shard_move,
    usable_packs,
)
from perdure._store.sql import queries

T = TypeVar("T")
Q = queries("postgres")
DIALECT = "postgres"
SCHEMES = ("postgresql", "postgres")
DEFAULT_POOL = 8
log = logging.getLogger("perdure.store")


class PostgresURL(msgspec.Struct, frozen=True, kw_only=True):
    conninfo: str
    """What psycopg connects with (credentials included)."""
    shown: str
    """The URL without user, password or parameters: safe to print."""
    pool_size: int
    """Connections this process may hold for reads and writes (one more listens)."""
    secrets: tuple[str, ...] = ()
    """The user name and password, to blank out of error messages."""


def parse_url(url: str) -> PostgresURL:
    """``postgresql://user:pw@host:port/db?pool_size=8&sslmode=...``; perdure reads ``pool_size``,
    libpq the rest."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise InvalidArgument(
            f"not a PostgreSQL URL; use postgresql://user@host:5432/database, got scheme {parts.scheme!r}"
        )
    host = parts.hostname or "localhost"
    try:
        port = parts.port
    except ValueError:
        raise InvalidArgument(
            f"the port of the PostgreSQL URL postgresql://{host}:... is not a number"
        ) from None
    database = parts.path.lstrip("/")
    shown = f"postgresql://{host}{f':{port}' if port else ''}/{database}"
    params = parse_qsl(parts.query, keep_blank_values=True)
    pool_size = DEFAULT_POOL
    rest = []
    for key, value in params:
        if key != "pool_size":
            rest.append((key, value))
        elif not value.isdigit() or not 1 <= int(value) <= 1000:
            raise InvalidArgument(f"pool_size={value!r} in {shown}: must be an integer from 1 to 1000")
        else:
            pool_size = int(value)
    conninfo = urlunsplit(("postgresql", parts.netloc, parts.path, urlencode(rest), ""))
    secrets = tuple(unquote(s) for s in (parts.username, parts.password) if s)
    return PostgresURL(conninfo=conninfo, shown=shown, pool_size=pool_size, secrets=secrets)


_TRANSIENT = (
    errors.SerializationFailure,
    errors.DeadlockDetected,
    errors.LockNotAvailable,
    errors.AdminShutdown,
    errors.CannotConnectNow,
    errors.TooManyConnections,
    errors.QueryCanceled,
    # The server ended a transaction left idle too long (a paused executor; see
    # IDLE_IN_TRANSACTION): nothing of it was committed, and the retry is fenced.
    errors.IdleInTransactionSessionTimeout,
)
_PERMANENT_CONNECT = ("does not exist", "authentication failed", "no password supplied", "not permitted")


def map_error(exc: Exception, where: str, secrets: tuple[str, ...] = ()) -> StoreError:
    """The StoreError a psycopg (or pool) error stands for: transient or permanent.
    ``secrets`` (the URL's user and password) are blanked out of the message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    for secret in secrets:
        text = text.replace(secret, "***")
    if isinstance(exc, PoolTimeout):
        return StoreUnavailable(f"{where}: no database connection free or reachable ({text})")
    if isinstance(exc, _TRANSIENT):
        return StoreUnavailable(f"{where}: {text}; retrying may help")
    if isinstance(exc, (errors.UndefinedTable, errors.UndefinedColumn, errors.UndefinedFunction)):
        return IncompatibleDatabase(
            f"{where} is not a perdure database this version can read ({text}); "
            "point perdure at an empty database or schema"
        )
    if isinstance(exc, psycopg.IntegrityError):
        return StoreIntegrityError(f"{where}: {text}")
    if isinstance(exc, psycopg.OperationalError) and any(p in text for p in _PERMANENT_CONNECT):
        return StoreIntegrityError(f"{where}: cannot use this database ({text}); check the URL")
    if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
        return StoreUnavailable(f"{where}: {text}")  # connection refused, lost or closed
    return StoreIntegrityError(f"{where}: {text}")


def _split_values(query: str) -> tuple[str, str, str]:
    """(up to VALUES, the tuple, the rest) of an INSERT with one VALUES tuple."""
    m = re.search(r"VALUES\s*(\([^()]*\))", query)
    assert m is not None, "not an INSERT with one VALUES tuple"
    return query[: m.start(1)], m.group(1), query[m.end(1) :]


_MULTIROW = {
    Q[name]: _split_values(Q[name]) for name in ("journal_insert", "instance_insert", "instance_create")
}
"""Inserts that may take many VALUES tuples: ON CONFLICT DO NOTHING is fine with repeats
within one statement (DO UPDATE is not, so the upserts run row by row)."""


class _Tx:
    """One transaction as few round trips as possible: writes are bound client-side and
    queued as text; a read sends everything queued with it as one multi-statement query,
    and the COMMIT goes with the last writes. (psycopg's pipeline mode does the same with
    far more CPU per statement.)"""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self.cur = psycopg.AsyncClientCursor(conn)
        self.queued: list[str] = ["BEGIN"]
        self.begun = False

    async def _send(self, last: str) -> None:
        self.queued.append(last)
        text = ";\n".join(self.queued)
        self.queued = []
        self.begun = True
        await self.cur.execute(text)
        while self.cur.nextset():  # to the last statement's result
            pass

    async def rows(self, query: str, params: Any) -> list[tuple[Any, ...]]:
        await self._send(self.cur.mogrify(query, params))
        return await self.cur.fetchall()

    async def count(self, query: str, params: Any) -> int:
        await self._send(self.cur.mogrify(query, params))
        return self.cur.rowcount

    async def run(self, query: str, params: Any) -> None:
        self.queued.append(self.cur.mogrify(query, params))

    async def many(self, query: str, rows: Sequence[Any]) -> None:
        """Run ``query`` once per row: as one multi-row statement if it is an INSERT whose
        VALUES tuple may repeat (``MULTIROW``), else one statement per row."""
        if len(rows) > 1 and query in _MULTIROW:
            self.queued.append(self._multirow(query, rows))
        else:
            self.queued.extend(self.cur.mogrify(query, r) for r in rows)

    def _multirow(self, query: str, rows: Sequence[Any]) -> str:
        head, values, tail = _MULTIROW[query]
        return head + ", ".join(self.cur.mogrify(values, r) for r in rows) + tail

    async def rows_of_many(self, query: str, rows: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Like ``many`` for a multi-row INSERT ... RETURNING, and what it returned."""
        await self._send(self._multirow(query, rows))
        return await self.cur.fetchall()

    async def commit(self) -> None:
        await self._send("COMMIT")

    def mark(self) -> int:
        """Where the next statement queued will be among the results of the next round trip."""
        return len(self.queued)

    async def commit_reading(self, position: int) -> list[tuple[Any, ...]]:
        """COMMIT with everything queued, in one round trip; the rows of the statement that
        was queued at ``position``."""
        self.queued.append("COMMIT")
        text = ";\n".join(self.queued)
        self.queued = []
        self.begun = True
        await self.cur.execute(text)
        for _ in range(position):
            self.cur.nextset()
        return await self.cur.fetchall()

    async def rollback(self) -> None:
        if self.begun and not self.cur.connection.closed:
            await self.cur.execute("ROLLBACK")


def _claim_params(op: Claim) -> dict[str, Any]:
    return {"executor": op.executor, "claim_id": op.claim_id, "now": op.now, "lease_now": op.lease_now,
            "limit": op.limit, "overdue": op.overdue}  # fmt: skip


def _claimed(found: list[tuple[Any, ...]]) -> list[InstanceRow]:
    return [instance_row(r) for r in found]


async def _claim(tx: _Tx, op: Claim) -> list[InstanceRow]:
    return _claimed(await tx.rows(Q["claim"], _claim_params(op)))


async def _create_many(tx: _Tx, ops: Sequence[CreateInstance]) -> list[bool]:
    """Insert-or-ignore the rows in one statement; True for each that is new (the first of
    repeated ids in the batch)."""
    new = {r[0] for r in await tx.rows_of_many(Q["instance_create"], [insert_params(op.row) for op in ops])}
    outcomes = []
    for op in ops:
        outcomes.append(op.row.id in new)
        new.discard(op.row.id)
    return outcomes


def _enqueue_params(row: InstanceRow) -> dict[str, Any]:
    assert row.actor_id is not None
    type_, key = row.actor_id.split("/", 1)
    return {
        "id": row.id, "actor": row.actor_id, "type": type_, "key": key, "name": row.name,
        "status": row.status.value, "input": row.input, "now": row.created_at, "wake_at": row.wake_at,
        "owner": row.owner, "token": row.token, "parent_id": row.parent_id,
        "parent_close": row.parent_close, "deadline": row.deadline, "shard": shard_of(row),
    }  # fmt: skip


def _enqueued(op: Enqueue) -> Callable[[list[tuple[Any, ...]]], EnqueueOutcome]:
    """How ``actor_enqueue``'s rows make ``op``'s outcome."""

    def outcome(found: list[tuple[Any, ...]]) -> EnqueueOutcome:
        if not found:
            return EnqueueOutcome(None)
        status, *actor = found[0]
        row = actor_row(actor)
        return EnqueueOutcome(Status(status), row if row.active == op.row.id else None)

    return outcome


async def _enqueue(tx: _Tx, op: Enqueue) -> EnqueueOutcome:
    return _enqueued(op)(await tx.rows(Q["actor_enqueue"], _enqueue_params(op.row)))


async def _direct_call(tx: _Tx, op: DirectCall) -> bool | None:
    if await tx.rows(Q["status_of"], (op.row.id,)):
        return None
    query = "actor_direct_create" if op.revision is None else "actor_direct_update"
    if await tx.count(Q[query], direct_params(op)) != 1:
        return False
    crashpoints.hit("actor.direct_mid_commit")
    await tx.run(Q["instance_insert"], insert_params(op.row))
    if op.state is not None:
        await tx.run(Q["invocation_state_size"], {"id": op.row.id, "size": len(op.state)})
    return True


async def _delete_actor(tx: _Tx, op: DeleteActor) -> bool | None:
    if not await tx.rows(Q["actor_get"], (op.actor_id,)):
        return None
    if await tx.count(Q["actor_delete"], (op.actor_id,)) == 0:
        return False
    await tx.run(Q["actor_delete_invocations"], (op.actor_id,))
    return True


async def _beat(tx: _Tx, op: Beat) -> None:
    await tx.run(Q["executor_beat"], (op.executor, op.host, op.pid, op.expires_at))


async def _expire(tx: _Tx, op: ExpireExecutor) -> None:
    await tx.run(Q["executor_expire"], (op.executor,))
    await tx.run(Q["shards_free"], (op.executor,))


async def _lease_shards(tx: _Tx, op: LeaseShards) -> tuple[int, ...]:
    p = {"executor": op.executor, "now": op.now, "expires_at": op.expires_at}
    [(live, held)] = await tx.rows(Q["shards_share"], p)
    move = shard_move(p, live, held)
    if move is not None:
        await tx.run(Q[move[0]], move[1])
    return tuple(sorted(shard for (shard,) in await tx.rows(Q["shards_renew"], p)))


async def _status(tx: _Tx, instance_id: str) -> Status | None:
    found = await tx.rows(Q["status_of"], (instance_id,))
    return Status(found[0][0]) if found else None


async def _resume(tx: _Tx, op: Resume) -> Status | None:
    status = await _status(tx, op.instance_id)
    if status is not None:
        await tx.run(Q["resume"], (op.now, op.now, op.instance_id))
    return status


async def _create_schedule(tx: _Tx, op: CreateSchedule) -> bool:
    row = msgspec.structs.asdict(op.row)
    row["paused"] = int(op.row.paused)
    return await tx.count(Q["schedule_insert"], row) == 1


async def _fire_schedule(tx: _Tx, op: FireSchedule) -> bool:
    won = await tx.count(
        Q["schedule_fire"],
        {"id": op.schedule_id, "expected_next_at": op.expected_next_at,
         "expected_buffered_at": op.expected_buffered_at, "new_next_at": op.new_next_at,
         "buffered_at": op.buffered_at, "now": op.now,
         "last_instance": op.starts[-1].id if op.starts else None},
    ) == 1  # fmt: skip
    if won and op.starts:
        await tx.many(Q["instance_insert"], [insert_params(r) for r in op.starts])
    return won


async def _pause_schedule(tx: _Tx, op: PauseSchedule) -> bool:
    params = {"id": op.schedule_id, "paused": int(op.paused), "next_at": op.next_at, "now": op.now}
    return await tx.count(Q["schedule_pause"], params) == 1


async def _delete_schedule(tx: _Tx, op: DeleteSchedule) -> bool:
    return await tx.count(Q["schedule_delete"], (op.schedule_id,)) == 1


async def _cancel(tx: _Tx, op: RequestCancel) -> Status | None:
    found = await tx.rows(Q["cancel_request"], {"now": op.now, "id": op.instance_id})
    if found:
        if found[0][0] == Status.CANCELLED:  # ended without running: close its children, tell its parent
            closing = {"now": op.now, "id": op.instance_id}
            for name in ("children_close", "parent_lock", "parent_wake"):
                await tx.run(Q[name], closing)
            if found[0][1] is not None:  # an actor call: the next one's turn, if it was its
                turn = {**closing, "actor": found[0][1]}
                for name in ("actor_lock", "actor_next_turn", "actor_wake"):
                    await tx.run(Q[name], turn)
        return Status(found[0][0])
    return await _status(tx, op.instance_id)


async def _send(tx: _Tx, op: Send) -> Status | bool | None:
    status = await _status(tx, op.message.target)
    if status is None:
        return None
    if status not in TERMINAL:
        message = message_params(op.message)
        for name in ("message_lock", "message_insert", "message_wake"):
            await tx.run(Q[name], message)
    elif await tx.rows(Q["message_sent"], (op.message.target, op.message.sender_key)):
        return True  # delivered before the target ended: a retried commit, or a repeated key
    return status


async def _post(tx: _Tx, op: Post) -> bool:
    params = mail_params(op.message)
    for name in ("mailbox_open", "actor_lock"):  # see AppendRows.statements
        await tx.run(Q[name], params)
    delivered = await tx.count(Q["mailbox_insert"], params) == 1
    await tx.run(Q["mailbox_wake"], params)
    return delivered


Alone = tuple[str, Any, Callable[[list[tuple[Any, ...]]], Outcome]]
"""A batch of one operation that is one statement: the query, its parameters, and how its
rows make the outcome."""


_LEAN = {Q["append_entry"]: Prepared("append_entry", Q["append_entry"], (int, int))}
"""The alone statements run straight on libpq (``Prepared``): a step's record, the one a
lone sequential workflow pays on every step."""


def _alone(op: Op) -> Alone | None:
    """``op`` as one statement that commits on its own (autocommit: no BEGIN, no COMMIT, one
    round trip, prepared once per connection), if it is one; else ``None``."""
    if type(op) is Append:
        return _entry_alone(op)
    if type(op) is Claim:
        return Q["claim"], _claim_params(op), _claimed
    if type(op) is Enqueue:
        return Q["actor_enqueue"], _enqueue_params(op.row), _enqueued(op)
    if type(op) is CreateInstance:
        return Q["instance_create"], insert_params(op.row), bool
    return None


def _entry_alone(op: Append) -> Alone | None:
    """A step's record: one journal entry and nothing else (``append_entry``)."""
    params = lone_entry(op)
    if params is None:
        return None
    return Q["append_entry"], params, _fenced(op.token)


def _end_alone(batch: Sequence[Op]) -> Alone | None:
    """A plain end (``plain_end``), with the record before it or alone, as one statement."""
    end = plain_end(batch)
    if end is None:
        return None
    entry, last = end
    if entry is None:
        return Q["end_update"], end_params(last), _fenced(last.token)
    return Q["end_entry"], (*entry, *end_params(last)[:-2], last.token), _fenced(last.token)


def _fenced(token: int) -> Callable[[list[tuple[Any, ...]]], Outcome]:
    """The outcome of a statement that returns the instance's (token, cancel_requested) as
    it found them: written only if the token is ``token``."""

    def outcome(found: list[tuple[Any, ...]]) -> Outcome:
        if not found or found[0][0] != token:
            return AppendOutcome(ok=False)
        return AppendOutcome(ok=True, cancel_requested=bool(found[0][1]))

    return outcome


_APPLY: dict[type, Callable[[_Tx, Any], Awaitable[Outcome]]] = {
    Claim: _claim,
    Beat: _beat,
    ExpireExecutor: _expire,
    LeaseShards: _lease_shards,
    RequestCancel: _cancel,
    Resume: _resume,
    Send: _send,
    CreateSchedule: _create_schedule,
    FireSchedule: _fire_schedule,
    PauseSchedule: _pause_schedule,
    DeleteSchedule: _delete_schedule,
    Enqueue: _enqueue,
    DirectCall: _direct_call,
    DeleteActor: _delete_actor,
    Post: _post,
}
"""The non-append operations, by type."""


WARM_CONNECTIONS = 3
"""Connections the pool opens at once and keeps: an executor starting reads and commits
several things at a time, and a connection made on demand costs a few milliseconds."""

IDLE_IN_TRANSACTION = "5s"
"""A transaction left open this long is ended by the server: a paused or cut-off executor
must not keep the rows its commit locked (claims skip locked rows), so its instances can be
taken over; its COMMIT then fails, and the retry is fenced out."""


def wake_channel(schema: str) -> str:
    """The channel of the wake-ups of ``schema``, as ``wake_channel_set`` names it: a channel
    is a name, at most 63 bytes (a longer one fails every NOTIFY)."""
    channel = f"perdure:{schema}"
    if len(channel.encode()) <= 63:
        return channel
    return f"perdure:{hashlib.md5(schema.encode()).hexdigest()}"  # noqa: S324 - a name, not a secret


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """What each new pool connection is set up with: the idle timeout, and the channel its
    NOTIFYs go to (``wake``, ``actor_wake``), set once here for every statement to read."""
    await conn.execute(f"SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION}'")
    await conn.execute(Q["wake_channel_set"])


def wakes_others(batch: Sequence[Op]) -> bool:
    """True if the batch may make work ready for another executor (so it sends a NOTIFY)."""
    for op in batch:
        if isinstance(op, Append):
            # An actor call's end that passes the turn notifies in SQL (``actor_wake``).
            u = op.update
            if op.children or op.sends or op.mail or (u is not None and u.status is Status.WAITING):
                return True
        elif isinstance(op, (CreateInstance, Enqueue)):
            if op.row.owner is None:  # else it runs where it was made (or waits for its turn)
                return True
        elif not isinstance(op, (Claim, Beat, LeaseShards, DirectCall)):  # a direct call readies nothing
            return True
    return False


class PostgresStore:
    """A ``Store`` on one PostgreSQL database (its ``current_schema()``)."""

    dialect = DIALECT

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parsed = parse_url(url)
        self.url = parsed.shown
        self.pool_size = parsed.pool_size
        self._conninfo = parsed.conninfo
        self._secrets = parsed.secrets
        self._timeout = timeout
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._channel = "perdure"
        self._callbacks: list[Callable[[], None]] = []
        self._listener: asyncio.Task[None] | None = None
        self._held: str | None = None
        """The executor whose liveness lock the listening session holds (see ``hold_executor``)."""
        self._holding = asyncio.Event()
        self._committer: psycopg.AsyncConnection[Any] | None = None
        """The connection commits run on between commits (see ``_commit_conn``)."""
        self._watch: Readable | None = None
        """The committer's socket as the loop watches it between step records, while the
        last use of the committer was one (see ``Readable``, ``_commit_conn``)."""
        self._committing = False
        self._closed = False
        self._packing: set[asyncio.Task[None]] = set()
        """Journal packs being written (see ``_pack_later``)."""

    # --- connections ---------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
            self._conninfo,
            min_size=min(WARM_CONNECTIONS, self.pool_size),
            max_size=self.pool_size,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(self._timeout))},
            timeout=self._timeout,
            open=False,
            name="perdure",
            configure=_configure,
        )
        try:
            await pool.open(wait=True, timeout=self._timeout)
            schema = await self._up_to_date(pool)
        except (PoolTimeout, psycopg.Error) as exc:
            await pool.close()
            raise map_error(exc, f"{self.url} (open)", self._secrets) from exc
        if schema is None:
            try:
                schema = await asyncio.to_thread(self._migrate)
            except BaseException:
                await pool.close()
                raise
        self._channel = wake_channel(schema)
        self._pool = pool
        if self._callbacks:
            self._start_listener()

    @staticmethod
    async def _up_to_date(pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]]) -> str | None:
        """The schema's name if it holds this version's perdure schema already, else ``None``
        (``_migrate`` then creates, migrates or refuses it, under its lock)."""
        async with pool.connection() as conn:
            found = await (await conn.execute(Q["schema_state"])).fetchone()
            if found is None or not found[1]:
                return None
            meta = dict(await (await conn.execute(Q["meta_all"])).fetchall())
        newest = str(migrate.latest(DIALECT))
        return (
            str(found[0]) if meta.get("app") == migrate.APP and meta.get("schema_version") == newest else None
        )

    def _migrate(self) -> str:
        """Create or migrate the schema under an advisory lock; returns the schema's name."""
        where = self.url
        try:
            with psycopg.connect(self._conninfo, connect_timeout=max(1, int(self._timeout))) as conn:
                conn.execute(Q["migrate_lock"])
                schema = conn.execute("SELECT current_schema()").fetchone()
                if schema is None or schema[0] is None:
                    raise IncompatibleDatabase(
                        f"{where} has no schema to create tables in; check search_path"
                    )
                tables = [r[0] for r in conn.execute(Q["tables"]).fetchall()]
                migrate.apply(conn, DIALECT, tables, f"{where} (schema {schema[0]})")
                return str(schema[0])
        except psycopg.Error as exc:
            raise map_error(exc, f"{where} (open)", self._secrets) from exc

    async def close(self) -> None:
        if self._closed:
            return
        if self._packing:  # before the pool goes: they are quick, and what they write is kept
            await asyncio.gather(*self._packing, return_exceptions=True)
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
        if self._pool is not None:
            if self._committer is not None:
                self._unwatch()
                await self._pool.putconn(self._committer)
                self._committer = None
            await self._pool.close()

    @asynccontextmanager
    async def _conn(self, where: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._closed or self._pool is None:
            raise StoreUnavailable(f"{self.url} is {'closed' if self._closed else 'not open'}")
        with self._errors(where):
            async with self._pool.connection() as conn:
                yield conn

    @contextmanager
    def _errors(self, where: str) -> Iterator[None]:
        """psycopg's and the pool's errors as StoreErrors (see ``map_error``)."""
        try:
            yield
        except (PoolTimeout, psycopg.Error) as exc:
            raise map_error(exc, f"{self.url} ({where})", self._secrets) from exc

    def _commit_conn(self, *, lean: bool = False) -> _CommitConn:
        """The connection a commit runs on: one kept out of the pool between commits, which
        come one at a time from the writer, so the hot path skips the pool's checkout and
        return. A commit while it is in use (another caller), or with a pool of one (the
        reads need it), goes through the pool; after an error it goes back to the pool,
        which discards it if broken. ``lean``: the commit waits on the committer's socket
        only through ``_watch`` (a ``Prepared``), which stays watched after it; any other
        use stops the watch first, and so does an error, before anything else can run."""
        return _CommitConn(self, lean)

    def _unwatch(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None

    # --- wake-ups ------------------------------------------------------------

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on this loop) whenever another commit may have made work ready."""
        self._callbacks.append(callback)
        if self._pool is not None and self._listener is None:
            self._start_listener()

    async def hold_executor(self, executor_id: str) -> None:
        """Hold ``executor_id``'s liveness lock on the listening session (taken again after a
        reconnect), so that other executors see at once when this process is gone."""
        self._held = executor_id
        if self._listener is None:
            self._start_listener()
        try:
            await asyncio.wait_for(self._holding.wait(), self._timeout)
        except TimeoutError:
            raise StoreUnavailable(
                f"{self.url}: could not hold the executor's liveness lock within {self._timeout}s"
            ) from None

    async def executor_gone(self, executor_id: str) -> bool:
        async with self._conn("executor_gone") as conn:
            cur = await conn.execute(Q["liveness_probe"], (executor_id,))
            found = await cur.fetchone()
            free = bool(found and found[0])
            if free:
                await conn.execute(Q["liveness_release"], (executor_id,))
            return free

    def _start_listener(self) -> None:
        self._listener = asyncio.get_running_loop().create_task(self._listen(), name="perdure-listen")

    def _wake(self) -> None:
        for callback in self._callbacks:
            callback()

    async def _listen(self) -> None:
        """LISTEN on a connection of its own (one beyond the pool); reconnect with backoff."""
        delay = 0.1
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._conninfo, autocommit=True, connect_timeout=max(1, int(self._timeout))
                ) as conn:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    if self._held is not None:
                        await conn.execute(Q["liveness_hold"], (self._held,))
                        self._holding.set()
                    delay = 0.1
                    self._wake()  # what was notified while not listening
                    async for _ in conn.notifies():
                        self._wake()
            except psycopg.Error as exc:
                log.debug("listening for wake-ups failed (%s); polling until reconnected", exc)
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, 5.0)

    # --- the write entry -----------------------------------------------------

    async def commit(self, batch: Sequence[Op]) -> list[Outcome]:
        outcomes = await self._commit(batch)
        for op, outcome in zip(batch, outcomes, strict=True):
            if type(op) is Append and op.entries and isinstance(outcome, AppendOutcome) and outcome.ok:
                for e in op.entries:
                    if ends_pack(e.position):
                        self._pack_later(op.instance_id, op.token, e.position - PACK_SIZE + 1)
        return outcomes

    def _pack_later(self, instance_id: str, token: int, first: int) -> None:
        """Pack the run of positions from ``first`` (see ``journal_packs``) in the background: the
        hot path's commit is one round trip with no read in it. A pack is a cache of rows,
        so a failure only leaves the rows to be read."""
        task = asyncio.get_running_loop().create_task(self._pack(instance_id, token, first))
        self._packing.add(task)
        task.add_done_callback(self._packing.discard)

    async def _pack(self, instance_id: str, token: int, first: int) -> None:
        """In a transaction of its own, fenced by the claim ``token``: the instance's row is
        locked against a continue-as-new (which moves the token and clears the packs) until
        the pack is in, or the pack is not written."""
        try:
            async with self._conn("pack") as conn, conn.transaction():
                if await (await conn.execute(Q["pack_fence"], (instance_id, token))).fetchone() is None:
                    return
                last = first + PACK_SIZE - 1
                data = pack(
                    await (await conn.execute(Q["journal_chunk"], (instance_id, first, last))).fetchall()
                )
                if data is not None:
                    await conn.execute(Q["journal_pack_insert"], (instance_id, first, data))
        except (StoreError, psycopg.Error) as exc:
            log.debug("could not pack the journal of %s from %d: %s", instance_id, first, exc)

    async def _commit(self, batch: Sequence[Op]) -> list[Outcome]:
        alone = _alone(batch[0]) if len(batch) == 1 and not wakes_others(batch) else None
        if alone is not None:
            return [await self._commit_alone(*alone)]
        end = _end_alone(batch)
        if end is not None:
            return [await self._commit_alone(*end)] * len(batch)
        if all(type(op) is Append for op in batch):
            done = await self._commit_appends(batch)  # type: ignore[arg-type]
            if done is not None:
                return done
        async with self._commit_conn() as conn:
            tx = _Tx(conn)
            try:
                outcomes = await self._apply(tx, batch)
                if wakes_others(batch):
                    await tx.run(Q["wake"], None)
                await tx.commit()
            except BaseException:
                await tx.rollback()
                raise
            return outcomes

    async def _commit_alone(
        self, query: str, params: Any, outcome: Callable[[list[tuple[Any, ...]]], Outcome]
    ) -> Outcome:
        lean = _LEAN.get(query)
        async with self._commit_conn(lean=lean is not None) as conn:
            if lean is not None:
                return outcome(
                    await lean.execute(conn, params, self._watch if conn is self._committer else None)
                )
            cur = await conn.execute(query, params, prepare=True)
            return outcome(await cur.fetchall())

    async def _commit_appends(self, batch: Sequence[Append]) -> list[Outcome] | None:
        """The hot path in one round trip: lock and check the claim tokens, and write as if
        all are current, in one multi-statement transaction. ``None`` if some token is stale
        (nothing was committed): the careful path then finds out which."""
        pairs = sorted({(op.instance_id, op.token) for op in batch})
        rows = AppendRows()
        for op in batch:
            rows.add(op)
        async with self._commit_conn() as conn:
            tx = _Tx(conn)
            try:
                at = tx.mark()
                await tx.run(Q["instance_fences"], (sorted({iid for iid, _ in pairs}),))
                guard = {"ids": [p[0] for p in pairs], "tokens": [p[1] for p in pairs], "n": len(pairs)}
                await tx.run(Q["fences_current"], guard)
                for invocation in rows.invocations:
                    await tx.run(Q["actor_enqueue"], _enqueue_params(invocation))
                for query, params in rows.statements(lock=True):
                    await tx.many(Q[query], params)
                if wakes_others(batch):
                    await tx.run(Q["wake"], None)
                found = await tx.commit_reading(at)
            except errors.DivisionByZero:
                await tx.rollback()
                return None
            except BaseException:
                await tx.rollback()
                raise
        cancel = {iid: bool(c) for iid, _token, c in found}
        return [AppendOutcome(ok=True, cancel_requested=cancel[op.instance_id]) for op in batch]

    async def _apply(self, tx: _Tx, batch: Sequence[Op]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        i = 0
        while i < len(batch):
            kind = type(batch[i])
            if kind is Append or kind is CreateInstance:
                # A run of appends (the hot path) or of starts goes in a few set-wise statements.
                j = i + 1
                while j < len(batch) and type(batch[j]) is kind:
                    j += 1
                run = batch[i:j]
                if kind is Append:
                    outcomes.extend(await self._append(tx, run))  # type: ignore[arg-type]
                else:
                    outcomes.extend(await _create_many(tx, run))  # type: ignore[arg-type]
                i = j
            else:
                apply = _APPLY.get(type(batch[i]))
                if apply is None:
                    raise TypeError(f"unknown store operation {type(batch[i]).__name__}")
                outcomes.append(await apply(tx, batch[i]))
                i += 1
        return outcomes

    async def _append(self, tx: _Tx, ops: Sequence[Append]) -> list[Outcome]:
        ids = sorted({op.instance_id for op in ops})
        found = await tx.rows(Q["instance_fences"], (ids,))
        outcomes, rows = fence(ops, {iid: (token, cancel) for iid, token, cancel in found})
        for invocation in rows.invocations:
            await tx.run(Q["actor_enqueue"], _enqueue_params(invocation))
        for query, params in rows.statements(lock=True):
            await tx.many(Q[query], params)
        return list(outcomes)

    # --- reads ---------------------------------------------------------------

    async def _fetch(self, where: str, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        async with self._conn(where) as conn:
            cur = await conn.execute(query, params)
            return await cur.fetchall()

    async def get_instance(self, instance_id: str) -> InstanceRow | None:
        found = await self._fetch("get_instance", Q["instance_get"], (instance_id,))
        return instance_row(found[0]) if found else None

    async def get_instances(self, instance_ids: Sequence[str]) -> list[InstanceRow]:
        found = await self._fetch("get_instances", Q["instance_get_many"], (list(instance_ids),))
        return [instance_row(r) for r in found]

    async def list_instances(
        self, *, status: Status | None, name: str | None, limit: int, cursor: str | None
    ) -> Page:
        params = {
            "status": status.value if status else None,
            "name": name,
            "before": parse_cursor(cursor),
            "limit": limit + 1,
        }
        rows = await self._fetch("list_instances", Q["instance_list"], params)
        more = len(rows) > limit
        rows = rows[:limit]
        nxt = f"s{rows[-1][-1]}" if more and rows else None
        return Page(items=[instance_row(r) for r in rows], cursor=nxt)

    async def load_journal(self, instance_id: str) -> list[JournalEntry]:
        # Rows come in JournalEntry's field order, so each row is the constructor's arguments.
        return list(
            starmap(JournalEntry, await self._fetch("load_journal", Q["journal_load"], (instance_id,)))
        )

    async def load_replay(self, instance_id: str) -> Replay:
        async with self._conn("load_replay") as conn:
            packs = usable_packs(await (await conn.execute(Q["journal_packs"], (instance_id,))).fetchall())
            start = len(packs) * PACK_SIZE
            rest = await (await conn.execute(Q["journal_replay"], (instance_id, start))).fetchall()
            span = await (await conn.execute(Q["journal_span"], {"id": instance_id})).fetchone()
            retries = await (await conn.execute(Q["retries_load"], (instance_id,))).fetchall()
        assert span is not None
        return replay(packs, rest, span, retries)

    async def list_executors(self) -> list[ExecutorRow]:
        return [
            ExecutorRow(id=i, host=h, pid=p, expires_at=x, shards=n)
            for i, h, p, x, n in await self._fetch("list_executors", Q["executors_all"])
        ]

    async def schema_version(self) -> int:
        return int((await self._fetch("schema_version", Q["meta_get"], ("schema_version",)))[0][0])

    async def next_message(
        self, instance_id: str, topic: str, *, mailbox: bool = False
    ) -> tuple[int, bytes] | None:
        query = Q["mailbox_next" if mailbox else "message_next"]
        found = await self._fetch("next_message", query, (instance_id, topic))
        return (int(found[0][0]), bytes(found[0][1])) if found else None

    async def get_event(self, instance_id: str, key: str) -> bytes | None:
        found = await self._fetch("get_event", Q["event_get"], (instance_id, key))
        return bytes(found[0][0]) if found else None

    async def load_runs(self, instance_id: str) -> list[RunRow]:
        return [
            RunRow(run=r, input=i, steps=n, ended_at=e)
            for r, i, n, e in await self._fetch("load_runs", Q["runs_load"], (instance_id,))
        ]

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        found = await self._fetch("get_schedule", Q["schedule_get"], (schedule_id,))
        return schedule_row(found[0]) if found else None

    async def list_schedules(self) -> list[ScheduleRow]:
        return [schedule_row(r) for r in await self._fetch("list_schedules", Q["schedules_all"])]

    async def due_schedules(self, now: float, limit: int) -> list[ScheduleRow]:
        found = await self._fetch("due_schedules", Q["schedules_due"], {"now": now, "limit": limit})
        return [schedule_row(r) for r in found]

    async def next_wake_at(self) -> float | None:
        found = (await self._fetch("next_wake_at", Q["next_wake_at"]))[0][0]
        return None if found is None else float(found)

    async def count_instances(self) -> dict[tuple[Status, str], int]:
        found = await self._fetch("count_instances", Q["instance_counts"])
        return {(Status(status), name): int(n) for status, name, n in found}

    async def get_actor(self, actor_id: str) -> ActorRow | None:
        found = await self._fetch("get_actor", Q["actor_get"], (actor_id,))
        return actor_row(found[0]) if found else None

    async def get_actors(self, actor_ids: Sequence[str]) -> list[ActorRow]:
        found = await self._fetch("get_actors", Q["actor_get_many"], (list(actor_ids),))
        return [actor_row(r) for r in found]

    async def list_actors(
        self,
        *,
        type: str | None,  # noqa: A002 - mirrors Store
        prefix: str | None,
        busy: bool | None,
        limit: int,
        cursor: str | None,
    ) -> ActorRows:
        params = {"type": type, "prefix": prefix, "busy": busy, "after": parse_key_cursor(cursor),
                  "limit": limit + 1}  # fmt: skip
        rows = [actor_row(r) for r in await self._fetch("list_actors", Q["actor_list"], params)]
        more = len(rows) > limit
        rows = rows[:limit]
        return ActorRows(items=rows, cursor=f"k{rows[-1].id}" if more and rows else None)

    async def actor_oplog(self, actor_id: str, *, limit: int, cursor: str | None) -> OplogRows:
        params = {"actor": actor_id, "after": parse_cursor(cursor, first=0), "limit": limit + 1}
        rows = await self._fetch("actor_oplog", Q["actor_oplog"], params)
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = f"s{rows[-1][-1]}" if more and rows else None
        return OplogRows(items=[oplog_row(r) for r in rows], cursor=cursor)


class _CommitConn:
    """``PostgresStore._commit_conn``'s context manager. A class, not a generator: every
    step's record enters one, and an async generator (with the loop's bookkeeping of it)
    and the generator of ``_errors`` inside it cost a step several us."""

    __slots__ = ("_conn", "_lean", "_pooled", "_store")

    def __init__(self, store: PostgresStore, lean: bool) -> None:
        self._store = store
        self._lean = lean
        self._pooled: AbstractAsyncContextManager[psycopg.AsyncConnection[Any]] | None = None
        self._conn: psycopg.AsyncConnection[Any] | None = None

    async def __aenter__(self) -> psycopg.AsyncConnection[Any]:
        store = self._store
        pool = store._pool
        if store._committing or store.pool_size < 2 or pool is None or store._closed:
            self._pooled = store._conn("commit")
            return await self._pooled.__aenter__()
        store._committing = True
        try:
            with store._errors("commit"):
                conn = store._committer
                if conn is None or conn.closed:
                    store._unwatch()
                    conn = store._committer = await pool.getconn()
        except BaseException:
            store._committing = False
            raise
        if not self._lean:
            store._unwatch()
        elif store._watch is None:
            store._watch = Readable(conn.pgconn.socket)
        self._conn = conn
        return conn

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        if self._pooled is not None:
            return await self._pooled.__aexit__(kind, exc, tb)
        store = self._store
        try:
            if exc is None:
                return None
            # Stopped at once, before anything else can run: see Readable.
            store._unwatch()
            store._committer = None
            assert store._pool is not None
            assert self._conn is not None
            with store._errors("commit"):
                await store._pool.putconn(self._conn)
            if isinstance(exc, (PoolTimeout, psycopg.Error)):
                raise map_error(exc, f"{store.url} (commit)", store._secrets) from exc
            return None
        finally:
            store._committing = False
