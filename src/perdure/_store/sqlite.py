"""The SQLite store: WAL, one writer connection on its own thread, readers on theirs.

The writer thread owns the only write connection; ``commit`` hands it a batch
and awaits the outcome, so the asyncio loop keeps working (sqlite3 releases the
GIL while it writes and syncs). Writes take ``BEGIN IMMEDIATE`` so a lock wait
happens up front under ``busy_timeout``, never as a failed upgrade mid-batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import struct
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import starmap
from typing import Any, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

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
)
from perdure._store import migrate
from perdure._store.rows import (
    PACK_SIZE,
    actor_row,
    chunk_ends,
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
log = logging.getLogger("perdure.sqlite")
Q = queries("sqlite")
SYNC_MODES = ("FULL", "NORMAL")
INLINE_BATCH = 2
INLINE_STREAK = 8
"""After this many batches of at most INLINE_BATCH operations in a row, they are committed on
the event loop's thread (when the lock is free): the workload is one workflow at a time."""
INLINE_READ = 8
"""Reads of at most this many actor rows run on the event loop's thread (see ``_read_small``)."""
CHECKPOINT_COMMITS = 16
CHECKPOINT_FRAMES = 100
DENSE_COMMIT_FRAMES = 4
SPARSE_CHECKPOINT_FRAMES = 800
"""A WAL checkpoint is started in a reader thread once at least CHECKPOINT_COMMITS commits were
written since the last one began, and CHECKPOINT_FRAMES WAL frames (pages) if they wrote
DENSE_COMMIT_FRAMES or more each on average, else SPARSE_CHECKPOINT_FRAMES (see ``_committed``)."""
MX_FRAME = struct.Struct("=I"), 16
"""How the WAL-index (the ``-shm`` file) holds ``mxFrame``, the number of frames in the WAL, and
at which offset of its header (SQLite's documented WAL-index format)."""


def parse_url(url: str) -> tuple[str, str]:
    """``sqlite:///rel.db``, ``sqlite:////abs.db`` (``?synchronous=NORMAL``) to (path, mode)."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise InvalidArgument(f"not a SQLite URL: {url!r}; use sqlite:///path/to/file.db")
    path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
    if parts.netloc or not path:
        raise InvalidArgument(
            f"SQLite URL {url!r} names no file; use sqlite:///relative.db or sqlite:////absolute.db"
        )
    if path == ":memory:":
        raise InvalidArgument("an in-memory SQLite database cannot be durable; name a file")
    params = parse_qs(parts.query)
    unknown = set(params) - {"synchronous"}
    if unknown:
        raise InvalidArgument(f"unknown SQLite URL parameter(s) {sorted(unknown)}; known: synchronous")
    mode = params.get("synchronous", ["FULL"])[-1].upper()
    if mode not in SYNC_MODES:
        raise InvalidArgument(
            f"synchronous={mode!r} is not supported; use FULL (durable, default) or NORMAL "
            "(survives process crashes, not power loss)"
        )
    return path, mode


def _locked(exc: sqlite3.Error) -> bool:
    """The database lock is held by another connection (SQLITE_BUSY or SQLITE_LOCKED)."""
    text = str(exc)
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text)


def _map_error(exc: sqlite3.Error, where: str) -> StoreError:
    text = str(exc)
    if isinstance(exc, sqlite3.IntegrityError):
        return StoreIntegrityError(f"{where}: {text}")
    if "file is not a database" in text or "malformed" in text:
        return IncompatibleDatabase(f"{where} is not a SQLite database perdure can use: {text}")
    if _locked(exc):
        return StoreUnavailable(
            f"{where} is locked by another connection ({text}); retrying may help, or stop the other writer"
        )
    return StoreUnavailable(f"{where}: {text}")


Single = tuple[str, tuple[Any, ...], Callable[[int], list[Outcome] | None]]
"""A batch as one statement: its query, its parameters, and its outcomes from the count of
rows it wrote (``None``: they cannot be told from it)."""


def _single(batch: Sequence[Op]) -> Single | None:
    """``batch`` as one statement, if it is one operation that is: a start, or a step's record
    fenced in SQL (``journal_insert_fenced``; if it writes nothing, the full path tells why:
    a stale token, a cancel asked for, or the entry there already)."""
    if len(batch) != 1:
        return None
    op = batch[0]
    if type(op) is CreateInstance:
        return Q["instance_insert"], insert_params(op.row), _created
    entry = lone_entry(op)
    if entry is None or ends_pack(entry[1]):  # a pack's last entry: the full path writes the pack
        return None
    return Q["journal_insert_fenced"], entry, _recorded


def _created(written: int) -> list[Outcome]:
    return [written == 1]


def _recorded(written: int) -> list[Outcome] | None:
    return [AppendOutcome(ok=True)] if written == 1 else None


def _deliver(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    conn.executemany(Q["message_insert"], rows)
    conn.executemany(Q["message_wake"], rows)


def _claim(conn: sqlite3.Connection, op: Claim) -> list[InstanceRow]:
    again = conn.execute(Q["claim_repeat"], (op.executor, op.claim_id)).fetchall()
    if again:
        return [instance_row(r) for r in again]
    params: dict[str, Any] = {
        "executor": op.executor,
        "claim_id": op.claim_id,
        "now": op.now,
        "lease_now": op.lease_now,
        "limit": op.limit,
        "overdue": op.overdue,
    }
    rows = conn.execute(Q["claim_ready"], params).fetchall()
    return [instance_row(r) for r in rows]


def _create(conn: sqlite3.Connection, op: CreateInstance) -> bool:
    return bool(conn.execute(Q["instance_insert"], insert_params(op.row)).rowcount == 1)


def _enqueue(conn: sqlite3.Connection, row: InstanceRow) -> EnqueueOutcome:
    if conn.execute(Q["status_of"], (row.id,)).fetchone() is not None:
        return EnqueueOutcome(None)
    actor = row.actor_id
    assert actor is not None
    type_, key = actor.split("/", 1)
    conn.execute(Q["actor_insert"], (actor, type_, key, row.created_at, row.created_at))
    found = actor_row(conn.execute(Q["actor_take_turn"], {"id": row.id, "actor": actor}).fetchone())
    if found.active != row.id:  # another invocation's turn: wait behind it
        row = msgspec.structs.replace(row, status=Status.QUEUED, owner=None, token=0, wake_at=None)
    conn.execute(Q["instance_insert"], insert_params(row))
    return EnqueueOutcome(row.status, found if found.active == row.id else None)


def _direct_call(conn: sqlite3.Connection, op: DirectCall) -> bool | None:
    if conn.execute(Q["status_of"], (op.row.id,)).fetchone() is not None:
        return None
    query = "actor_direct_create" if op.revision is None else "actor_direct_update"
    if conn.execute(Q[query], direct_params(op)).rowcount != 1:
        return False
    crashpoints.hit("actor.direct_mid_commit")
    size = None if op.state is None else len(op.state)
    conn.execute(Q["direct_invocation_insert"], (*insert_params(op.row), size))
    return True


def _delete_actor(conn: sqlite3.Connection, op: DeleteActor) -> bool | None:
    if conn.execute(Q["actor_get"], (op.actor_id,)).fetchone() is None:
        return None
    if conn.execute(Q["actor_delete"], (op.actor_id,)).rowcount == 0:
        return False
    conn.execute(Q["actor_delete_invocations"], (op.actor_id,))
    return True


def _beat(conn: sqlite3.Connection, op: Beat) -> None:
    conn.execute(Q["executor_beat"], (op.executor, op.host, op.pid, op.expires_at))


def _expire(conn: sqlite3.Connection, op: ExpireExecutor) -> None:
    conn.execute(Q["executor_expire"], (op.executor,))
    conn.execute(Q["shards_free"], (op.executor,))


def _lease_shards(conn: sqlite3.Connection, op: LeaseShards) -> tuple[int, ...]:
    p = {"executor": op.executor, "now": op.now, "expires_at": op.expires_at}
    move = shard_move(p, *conn.execute(Q["shards_share"], p).fetchone())
    if move is not None:
        conn.execute(Q[move[0]], move[1])
    return tuple(sorted(shard for (shard,) in conn.execute(Q["shards_renew"], p)))


def _resume(conn: sqlite3.Connection, op: Resume) -> Status | None:
    found = conn.execute(Q["status_of"], (op.instance_id,)).fetchone()
    if found is not None:
        conn.execute(Q["resume"], (op.now, op.now, op.instance_id))
    return None if found is None else Status(found[0])


def _create_schedule(conn: sqlite3.Connection, op: CreateSchedule) -> bool:
    row = msgspec.structs.asdict(op.row)
    row["paused"] = int(op.row.paused)
    return bool(conn.execute(Q["schedule_insert"], row).rowcount == 1)


def _fire_schedule(conn: sqlite3.Connection, op: FireSchedule) -> bool:
    won = conn.execute(
        Q["schedule_fire"],
        {"id": op.schedule_id, "expected_next_at": op.expected_next_at,
         "expected_buffered_at": op.expected_buffered_at, "new_next_at": op.new_next_at,
         "buffered_at": op.buffered_at, "now": op.now,
         "last_instance": op.starts[-1].id if op.starts else None},
    ).rowcount == 1  # fmt: skip
    if won:
        conn.executemany(Q["instance_insert"], [insert_params(r) for r in op.starts])
    return bool(won)


def _pause_schedule(conn: sqlite3.Connection, op: PauseSchedule) -> bool:
    params = {"id": op.schedule_id, "paused": int(op.paused), "next_at": op.next_at, "now": op.now}
    return bool(conn.execute(Q["schedule_pause"], params).rowcount == 1)


def _delete_schedule(conn: sqlite3.Connection, op: DeleteSchedule) -> bool:
    return bool(conn.execute(Q["schedule_delete"], (op.schedule_id,)).rowcount == 1)


def _cancel(conn: sqlite3.Connection, op: RequestCancel) -> Status | None:
    row = conn.execute(Q["cancel_request"], {"now": op.now, "id": op.instance_id}).fetchone()
    if row is not None:
        if row[0] == Status.CANCELLED:  # ended without running: close its children, tell its parent
            conn.execute(Q["children_close"], {"now": op.now, "id": op.instance_id})
            conn.execute(Q["parent_wake"], {"now": op.now, "id": op.instance_id})
            if row[1] is not None:  # an actor invocation: the next one's turn, if it was its
                turn = {"id": op.instance_id, "actor": row[1], "now": op.now}
                conn.execute(Q["actor_next_turn"], turn)
                conn.execute(Q["actor_wake"], turn)
        return Status(row[0])
    found = conn.execute(Q["status_of"], (op.instance_id,)).fetchone()
    return None if found is None else Status(found[0])


def _send(conn: sqlite3.Connection, op: Send) -> Status | bool | None:
    found = conn.execute(Q["status_of"], (op.message.target,)).fetchone()
    if found is None:
        return None
    status = Status(found[0])
    if status not in TERMINAL:
        _deliver(conn, [message_params(op.message)])
    elif conn.execute(Q["message_sent"], (op.message.target, op.message.sender_key)).fetchone():
        return True  # delivered before the target ended: a retried commit, or a repeated key
    return status


def _post(conn: sqlite3.Connection, op: Post) -> bool:
    params = mail_params(op.message)
    conn.execute(Q["mailbox_open"], params)
    delivered = conn.execute(Q["mailbox_insert"], params).rowcount == 1
    conn.execute(Q["mailbox_wake"], params)
    return bool(delivered)


_APPLY: dict[type, Callable[[sqlite3.Connection, Any], Outcome]] = {
    CreateInstance: _create,
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
    Enqueue: lambda conn, op: _enqueue(conn, op.row),
    DirectCall: _direct_call,
    DeleteActor: _delete_actor,
    Post: _post,
}
"""The non-append operations, by type."""


class SQLiteStore:
    """A ``Store`` on one SQLite file."""

    dialect = "sqlite"

    def __init__(self, path: str, *, synchronous: str = "FULL", busy_timeout: float = 5.0) -> None:
        self.path = path
        self.url = f"sqlite:///{path}"
        self._sync = synchronous
        self._busy = busy_timeout
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="perdure-sqlite-writer")
        self._readers = ThreadPoolExecutor(2, thread_name_prefix="perdure-sqlite-reader")
        self._wconn: sqlite3.Connection | None = None
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lconn: sqlite3.Connection | None = None
        """The loop thread's read connection: it never waits for a lock (see ``_read_small``)."""
        self._llock = threading.Lock()
        self._lock = threading.Lock()
        self._wlock = threading.Lock()
        """Held while the write connection is in a transaction (writer thread or inline)."""
        self._small_streak = 0
        self._since_checkpoint = 0
        """Commits since the last checkpoint was started."""
        self._wal_index: int | None = None
        """A file descriptor of the WAL-index, to read how many frames the WAL holds."""
        self._frames_seen = 0
        """Frames in the WAL when ``_wal_frames`` last read them."""
        self._frames_mark = 0
        """Frames in the WAL when the last checkpoint was started (0 once the WAL started over)."""
        self._checkpointing = False
        self._waits_for_lock = True
        """The write connection's busy_timeout: on (True) or zero (False), see ``_connection``."""
        self._closed = False

    # --- connections ---------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=self._busy, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self._busy * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA synchronous = {self._sync}")
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._lock:
                self._reader_conns.append(conn)
        return conn

    async def _on(self, pool: ThreadPoolExecutor, fn: Callable[[], T], where: str) -> T:
        if self._closed:
            raise StoreUnavailable(f"{self.url} is closed")
        loop = asyncio.get_running_loop()

        def call() -> T:
            try:
                return fn()
            except sqlite3.Error as exc:
                raise _map_error(exc, f"{self.path} ({where})") from exc

        return await loop.run_in_executor(pool, call)

    async def open(self) -> None:
        def setup() -> None:
            parent = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(parent):
                raise InvalidArgument(f"the directory of {self.path!r} does not exist")
            conn = self._connect()
            try:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode != "wal":
                    raise StoreUnavailable(f"{self.path}: could not switch to WAL (got {mode})")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    tables = [
                        r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
                    ]
                    migrate.apply(conn, self.dialect, tables, self.path)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
            except BaseException:
                conn.close()
                raise
            self._wconn = conn
            self._lconn = self._connect()
            self._lconn.execute("PRAGMA busy_timeout = 0")
            with contextlib.suppress(OSError):  # then every CHECKPOINT_COMMITS commits are enough
                self._wal_index = os.open(f"{self.path}-shm", os.O_RDONLY)

        await self._on(self._writer, setup, "open")
        # Start a reader thread and its connection now, while the executor starts, rather than
        # at the first read (a recovery's journal); a failure here is met again by that read.
        self._readers.submit(self._warm_reader)

    def _warm_reader(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._reader()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def shut() -> None:
            # Reads and writes still in flight finish first: a connection closed under a
            # query in another thread can crash sqlite3.
            self._readers.shutdown(wait=True)
            with self._wlock:
                if self._wconn is not None:
                    self._wconn.close()
                if self._wal_index is not None:
                    os.close(self._wal_index)
            with self._lock:
                for conn in self._reader_conns:
                    conn.close()
            with self._llock:
                if self._lconn is not None:
                    self._lconn.close()

        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._writer, shut)
        self._writer.shutdown(wait=True)

    # --- the write entry -----------------------------------------------------

    async def commit(self, batch: Sequence[Op]) -> list[Outcome]:
        small = len(batch) <= INLINE_BATCH
        self._small_streak = self._small_streak + 1 if small else 0
        if self._small_streak > INLINE_STREAK and not self._closed and self._wlock.acquire(blocking=False):
            # Only small batches lately: a lone workflow stepping on its own, whose next
            # write waits for this one. Committed right here, as two thread hand-offs
            # cost as much as the write. Under load (batches grow) the writer thread
            # commits, so the loop keeps running workflows during the sync. Only if the
            # connection and the database lock are free at once: never wait on a lock here.
            try:
                single = _single(batch)
                done = None if single is None else self._commit_single(*single)
                if done is None:
                    done = self._commit(batch, wait=False)
            except sqlite3.Error as exc:
                raise _map_error(exc, f"{self.path} (commit)") from exc
            finally:
                self._wlock.release()
            if done is not None:
                return done
        return await self._on(self._writer, lambda: self._commit_waiting(batch), "commit")

    def _commit_waiting(self, batch: Sequence[Op]) -> list[Outcome]:
        with self._wlock:
            done = self._commit(batch)
        assert done is not None
        return done

    def _connection(self, *, wait: bool) -> sqlite3.Connection:
        """The write connection, its busy_timeout set for the writer thread (``wait``: it waits
        for the database lock) or the loop's thread (never waits)."""
        conn = self._wconn
        if conn is None:
            raise StoreUnavailable(f"{self.url} is not open")
        if wait != self._waits_for_lock:
            # Switched between the two: only then, as a PRAGMA per commit costs.
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy * 1000) if wait else 0}")
            self._waits_for_lock = wait
        return conn

    def _commit_single(
        self, query: str, params: tuple[Any, ...], outcomes: Callable[[int], list[Outcome] | None]
    ) -> list[Outcome] | None:
        """A batch that is one statement (``_single``), run as its own transaction on the loop's
        thread: a start, or a step's record, as cheap as a raw single-row commit. ``None`` if
        the lock is taken, or if ``outcomes`` cannot tell them from the rows written: ``_commit``
        then applies the batch as any."""
        conn = self._connection(wait=False)
        try:
            written = conn.execute(query, params).rowcount
        except sqlite3.OperationalError as exc:
            if _locked(exc):
                return None
            raise
        done = outcomes(written)
        if done is not None:
            self._committed()
        return done

    def _commit(self, batch: Sequence[Op], *, wait: bool = True) -> list[Outcome] | None:
        """Apply ``batch`` in one transaction; ``None`` if ``wait=False`` and the lock is taken."""
        conn = self._connection(wait=wait)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if not wait and _locked(exc):
                return None
            raise
        try:
            outcomes: list[Outcome] = self._end(conn, batch) or []
            i = len(outcomes)
            while i < len(batch):
                if isinstance(batch[i], Append):
                    # A run of appends (the hot path) goes in a few set-wise statements.
                    j = i + 1
                    while j < len(batch) and isinstance(batch[j], Append):
                        j += 1
                    outcomes.extend(self._append(conn, batch[i:j]))  # type: ignore[arg-type]
                    i = j
                else:
                    outcomes.append(self._apply(conn, batch[i]))
                    i += 1
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._committed()
        return outcomes

    def _end(self, conn: sqlite3.Connection, batch: Sequence[Op]) -> list[Outcome] | None:
        """A plain end (``plain_end``) in its transaction as the record before it (if any) and
        the end, each fenced in SQL: no fence read, no rows gathered. ``None`` if it is not
        one, or if the record wrote nothing (a stale token, a cancel asked for, the entry
        there already): nothing is written then, and the full way applies it and says why."""
        end = plain_end(batch)
        if end is None:
            return None
        entry, last = end
        if entry is not None and conn.execute(Q["journal_insert_fenced"], entry).rowcount != 1:
            return None
        if conn.execute(Q["end_update"], end_params(last)).rowcount != 1:
            # The record went in under the same fence, so only the end alone gets here: the
            # full way tells a stale token from a cancel.
            return None
        return [AppendOutcome(ok=True)] * len(batch)

    def _committed(self) -> None:
        """After a commit: every CHECKPOINT_COMMITS commits, a checkpoint starts if the WAL
        grew by enough frames since the last one began.

        A checkpoint costs a sync of the database file, which the commits of that moment wait
        behind, and it is worth that by the pages it copies before SQLite's own checkpoint
        (in the commit that takes the WAL past 1,000 frames, see ``_checkpoint``) must. Commits
        of many frames each (an actor call writes about eight) change many pages: checkpointed
        every CHECKPOINT_FRAMES frames, as that commit would otherwise copy hundreds of them.
        Commits of a frame or two (a lone workflow's steps) mostly write the same few pages
        again: SQLite's checkpoint copies those quickly, and one of ours every
        CHECKPOINT_FRAMES frames cost W1 about 6% of its time per step.
        """
        self._since_checkpoint += 1
        if self._since_checkpoint % CHECKPOINT_COMMITS or self._checkpointing or self._closed:
            return
        frames = self._wal_frames()
        if frames is not None:
            grown = frames - self._frames_mark
            dense = grown >= DENSE_COMMIT_FRAMES * self._since_checkpoint
            if grown < (CHECKPOINT_FRAMES if dense else SPARSE_CHECKPOINT_FRAMES):
                return
        self._since_checkpoint = 0
        self._frames_mark = frames or 0
        self._checkpointing = True
        self._readers.submit(self._checkpoint)

    def _wal_frames(self) -> int | None:
        """The frames the WAL holds now, read from the WAL-index (``None`` if it cannot be read);
        seen fewer than after the last commit, the WAL started over, and ``_frames_mark`` too.

        A checkpoint is worth its cost (a sync of the database file, the WAL started over)
        by the pages it copies: a lone workflow's commits write a page or two each, an actor
        call's about eight, so counting commits alone checkpointed the first far too often.
        """
        if self._wal_index is None:
            return None
        fmt, offset = MX_FRAME
        try:
            data = os.pread(self._wal_index, fmt.size, offset)
        except OSError:
            return None
        if len(data) < fmt.size:
            return None
        (frames,) = fmt.unpack(data)
        if frames < self._frames_seen:
            self._frames_mark = 0  # the WAL started over: its frames are all new
        self._frames_seen = frames
        return int(frames)

    def _checkpoint(self) -> None:
        """Copy the WAL's pages into the database, in a reader thread, while commits go on.

        SQLite's automatic checkpoint runs inside the commit that takes the WAL past 1,000
        pages: that commit (often made on the event loop's thread, see ``commit``) writes
        every page changed since the last checkpoint into the database and syncs it, and its
        caller waits for all of it. Done here every few commits, a PASSIVE checkpoint (it
        takes no lock a writer or reader needs, and never waits) copies most of them
        beforehand, so the automatic one is left only the pages of the last few commits.
        That one still runs, in the commit: the WAL starts over from its beginning only
        after a checkpoint that no commit raced, so the WAL file stays that size. If this
        one fails, the next (or the automatic one) copies its pages.
        """
        try:
            self._reader().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:
            log.debug("WAL checkpoint of %s failed (the next one copies its pages): %s", self.path, exc)
        finally:
            self._checkpointing = False

    def _apply(self, conn: sqlite3.Connection, op: Op) -> Outcome:
        apply = _APPLY.get(type(op))
        if apply is None:
            raise TypeError(f"unknown store operation {type(op).__name__}")
        return apply(conn, op)

    def _append(self, conn: sqlite3.Connection, ops: Sequence[Append]) -> list[AppendOutcome]:
        """Apply appends fenced by their tokens; a stale one writes nothing."""
        ids = {op.instance_id for op in ops}
        if len(ids) == 1:  # the common case (one instance's records and its end): no JSON
            found = conn.execute(Q["instance_fence"], (ops[0].instance_id,))
        else:
            found = conn.execute(Q["instance_fences"], (msgspec.json.encode(list(ids)).decode(),))
        outcomes, rows = fence(ops, {iid: (token, cancel) for iid, token, cancel in found})
        for invocation in rows.invocations:
            _enqueue(conn, invocation)
        for query, params in rows.statements():
            conn.executemany(Q[query], params)
            if query == "journal_insert":
                for iid, first, last in chunk_ends(rows.entries):
                    data = pack(conn.execute(Q["journal_chunk"], (iid, first, last)).fetchall())
                    if data is not None:
                        conn.execute(Q["journal_pack_insert"], (iid, first, data))
        return outcomes

    # --- reads ---------------------------------------------------------------

    async def _read(self, fn: Callable[[sqlite3.Connection], T], where: str) -> T:
        return await self._on(self._readers, lambda: fn(self._reader()), where)

    async def _read_small(self, fn: Callable[[sqlite3.Connection], T], where: str) -> T:
        """A small, indexed read: on the loop's thread if it can be done there at once, else by
        a reader thread.

        For small point reads on the hot path: a hand-off to a reader thread and back costs
        more CPU than the read. In WAL mode a read takes no lock a writer holds, so it does
        not block; the rare one that would (a WAL being recovered, a connection holding the
        file in exclusive locking mode) fails at once here (busy_timeout 0). A read that
        fails here for any reason is left to a reader thread, which waits for the lock, or
        says what went wrong, as before.
        """
        conn = self._lconn
        if conn is not None and not self._closed and self._llock.acquire(blocking=False):
            try:
                return fn(conn)
            except sqlite3.Error:
                pass
            finally:
                self._llock.release()
        return await self._read(fn, where)

    async def get_instance(self, instance_id: str) -> InstanceRow | None:
        def q(c: sqlite3.Connection) -> InstanceRow | None:
            r = c.execute(Q["instance_get"], (instance_id,)).fetchone()
            return None if r is None else instance_row(r)

        return await self._read_small(q, "get_instance")

    async def get_instances(self, instance_ids: Sequence[str]) -> list[InstanceRow]:
        ids = msgspec.json.encode(list(instance_ids)).decode()
        return await self._read(
            lambda c: [instance_row(r) for r in c.execute(Q["instance_get_many"], (ids,))], "get_instances"
        )

    async def list_instances(
        self, *, status: Status | None, name: str | None, limit: int, cursor: str | None
    ) -> Page:
        before = parse_cursor(cursor)

        def q(c: sqlite3.Connection) -> Page:
            params = {
                "status": status.value if status else None,
                "name": name,
                "before": before,
                "limit": limit + 1,
            }
            rows = c.execute(Q["instance_list"], params).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            nxt = f"s{rows[-1][-1]}" if more and rows else None
            return Page(items=[instance_row(r) for r in rows], cursor=nxt)

        return await self._read(q, "list_instances")

    async def count_instances(self) -> dict[tuple[Status, str], int]:
        def q(c: sqlite3.Connection) -> dict[tuple[Status, str], int]:
            return {(Status(s), n): k for s, n, k in c.execute(Q["instance_counts"])}

        return await self._read(q, "count_instances")

    async def load_journal(self, instance_id: str) -> list[JournalEntry]:
        # Rows come in JournalEntry's field order, so each row is the constructor's arguments.
        def q(c: sqlite3.Connection) -> list[JournalEntry]:
            return list(starmap(JournalEntry, c.execute(Q["journal_load"], (instance_id,))))

        return await self._read(q, "load_journal")

    async def load_replay(self, instance_id: str) -> Replay:
        def q(c: sqlite3.Connection) -> Replay:
            packs = usable_packs(c.execute(Q["journal_packs"], (instance_id,)).fetchall())
            return replay(
                packs,
                c.execute(Q["journal_replay"], (instance_id, len(packs) * PACK_SIZE)).fetchall(),
                c.execute(Q["journal_span"], {"id": instance_id}).fetchone(),
                c.execute(Q["retries_load"], (instance_id,)).fetchall(),
            )

        return await self._read(q, "load_replay")

    async def list_executors(self) -> list[ExecutorRow]:
        def q(c: sqlite3.Connection) -> list[ExecutorRow]:
            return [
                ExecutorRow(id=i, host=h, pid=p, expires_at=x, shards=n)
                for i, h, p, x, n in c.execute(Q["executors_all"])
            ]

        return await self._read_small(q, "list_executors")

    async def schema_version(self) -> int:
        def q(c: sqlite3.Connection) -> int:
            return int(c.execute(Q["meta_get"], ("schema_version",)).fetchone()[0])

        return await self._read(q, "schema_version")

    async def next_message(
        self, instance_id: str, topic: str, *, mailbox: bool = False
    ) -> tuple[int, bytes] | None:
        query = Q["mailbox_next" if mailbox else "message_next"]

        def q(c: sqlite3.Connection) -> tuple[int, bytes] | None:
            row = c.execute(query, (instance_id, topic)).fetchone()
            return None if row is None else (int(row[0]), bytes(row[1]))

        return await self._read(q, "next_message")

    async def load_runs(self, instance_id: str) -> list[RunRow]:
        def q(c: sqlite3.Connection) -> list[RunRow]:
            return [
                RunRow(run=r, input=i, steps=n, ended_at=e)
                for r, i, n, e in c.execute(Q["runs_load"], (instance_id,))
            ]

        return await self._read(q, "load_runs")

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        def q(c: sqlite3.Connection) -> ScheduleRow | None:
            row = c.execute(Q["schedule_get"], (schedule_id,)).fetchone()
            return None if row is None else schedule_row(row)

        return await self._read(q, "get_schedule")

    async def list_schedules(self) -> list[ScheduleRow]:
        return await self._read(
            lambda c: [schedule_row(r) for r in c.execute(Q["schedules_all"])], "list_schedules"
        )

    async def due_schedules(self, now: float, limit: int) -> list[ScheduleRow]:
        def q(c: sqlite3.Connection) -> list[ScheduleRow]:
            return [schedule_row(r) for r in c.execute(Q["schedules_due"], {"now": now, "limit": limit})]

        return await self._read_small(q, "due_schedules")

    async def next_wake_at(self) -> float | None:
        def q(c: sqlite3.Connection) -> float | None:
            found = c.execute(Q["next_wake_at"]).fetchone()[0]
            return None if found is None else float(found)

        return await self._read_small(q, "next_wake_at")

    async def get_event(self, instance_id: str, key: str) -> bytes | None:
        def q(c: sqlite3.Connection) -> bytes | None:
            row = c.execute(Q["event_get"], (instance_id, key)).fetchone()
            return None if row is None else bytes(row[0])

        return await self._read(q, "get_event")

    async def get_actor(self, actor_id: str) -> ActorRow | None:
        def q(c: sqlite3.Connection) -> ActorRow | None:
            row = c.execute(Q["actor_get"], (actor_id,)).fetchone()
            return None if row is None else actor_row(row)

        return await self._read(q, "get_actor")

    async def get_actors(self, actor_ids: Sequence[str]) -> list[ActorRow]:
        ids = msgspec.json.encode(list(actor_ids)).decode()

        def q(c: sqlite3.Connection) -> list[ActorRow]:
            return [actor_row(r) for r in c.execute(Q["actor_get_many"], (ids,))]

        if len(actor_ids) <= INLINE_READ:
            return await self._read_small(q, "get_actors")
        return await self._read(q, "get_actors")

    async def list_actors(
        self,
        *,
        type: str | None,  # noqa: A002 - mirrors Store
        prefix: str | None,
        busy: bool | None,
        limit: int,
        cursor: str | None,
    ) -> ActorRows:
        after = parse_key_cursor(cursor)

        def q(c: sqlite3.Connection) -> ActorRows:
            params = {"type": type, "prefix": prefix, "busy": busy, "after": after, "limit": limit + 1}
            rows = [actor_row(r) for r in c.execute(Q["actor_list"], params)]
            more = len(rows) > limit
            rows = rows[:limit]
            return ActorRows(items=rows, cursor=f"k{rows[-1].id}" if more and rows else None)

        return await self._read(q, "list_actors")

    async def actor_oplog(self, actor_id: str, *, limit: int, cursor: str | None) -> OplogRows:
        after = parse_cursor(cursor, first=0)

        def q(c: sqlite3.Connection) -> OplogRows:
            params = {"actor": actor_id, "after": after, "limit": limit + 1}
            rows = c.execute(Q["actor_oplog"], params).fetchall()
            more = len(rows) > limit
            rows = rows[:limit]
            cursor = f"s{rows[-1][-1]}" if more and rows else None
            return OplogRows(items=[oplog_row(r) for r in rows], cursor=cursor)

        return await self._read(q, "actor_oplog")
