"""The Engine: the composition root that owns a store, a writer and an executor.

``async with perdure.Engine(url) as engine`` gives this object;
``with perdure.Engine(url) as engine`` gives a ``SyncEngine`` that forwards every
call to this one on a loop thread. Several engines may live in one process.
"""

from __future__ import annotations

import asyncio
import builtins
import math
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar, overload

from perdure._api.actors import ActorMethods
from perdure._api.decorators import Workflow
from perdure._api.handles import (
    ExecutorInfo,
    HistoryEntry,
    RunInfo,
    WorkflowHandle,
    WorkflowInfo,
    WorkflowPage,
)
from perdure._api.ops import check_send_target, client_sender_key, encode_arguments, encode_message
from perdure._api.schedules import ScheduleMethods
from perdure._codec import serializer
from perdure._journal.writer import Writer
from perdure._model import crashpoints
from perdure._model.definitions import Definition, Kind, Registry, check_name, default_registry
from perdure._model.errors import (
    Conflict,
    InvalidArgument,
    InvalidState,
    NotFound,
    ResultTimeout,
    StoreError,
    WorkflowCancelled,
    WorkflowFailed,
)
from perdure._model.records import (
    TERMINAL,
    CreateInstance,
    InstanceRow,
    Message,
    RequestCancel,
    Resume,
    Send,
    Status,
)
from perdure._model.stats import Stats
from perdure._runtime.actors import ActorHost
from perdure._runtime.clock import Clock, SystemClock
from perdure._runtime.executor import Executor
from perdure._runtime.handoff import MethodThreads
from perdure._runtime.leases import Liveness
from perdure._runtime.runner import Runtime, answer_query
from perdure._store.faulty import FaultyStore, parse_faults
from perdure._store.protocol import Store
from perdure._store.retrying import RetryingStore
from perdure._store.sqlite import SQLiteStore, parse_url

if TYPE_CHECKING:
    from perdure._api.sync import SyncEngine

R = TypeVar("R")
MAX_PAGE = 1000


def _positive(name: str, value: object, *, integer: bool = False) -> None:
    kinds: tuple[type, ...] = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:  # type: ignore[operator]
        kind = "an integer" if integer else "a number"
        raise InvalidArgument(f"Engine({name}=...) must be {kind} > 0, got {value!r}")


def open_store(url: str, *, busy_timeout: float) -> tuple[Store, Path | None]:
    """The store a URL names, and the directory for executor lock files (same machine only:
    SQLite; PostgreSQL executors learn of each other's death by lease expiry)."""
    if not isinstance(url, str):
        raise InvalidArgument(f"the database URL must be a str, got {type(url).__name__}")
    scheme = url.split(":", 1)[0] if ":" in url else ""
    if scheme in ("postgresql", "postgres"):
        try:
            from perdure._store.postgres import PostgresStore  # psycopg loads only when used
        except ImportError as exc:
            raise InvalidArgument(
                f"PostgreSQL needs psycopg ({exc.name} is missing); install perdure[postgres]"
            ) from None
        return PostgresStore(url), None
    if scheme != "sqlite":
        raise InvalidArgument(
            f"unsupported database URL scheme {scheme!r}; use sqlite:///path/to/file.db "
            "or postgresql://user@host:5432/database"
        )
    path, sync = parse_url(url)
    return SQLiteStore(path, synchronous=sync, busy_timeout=busy_timeout), Path(f"{path}-executors")


async def migrate(url: str) -> int:
    """Create or upgrade the schema of the database at ``url``; returns its schema version.

    What ``Engine.open`` does first, without starting anything: for deploys that migrate
    before the workers start (``perdure migrate --db URL``). Safe to run while executors
    start: PostgreSQL migrates under an advisory lock, SQLite in one write transaction.
    Raises ``IncompatibleDatabase`` for a database of another application or a newer schema.
    """
    store, _ = open_store(url, busy_timeout=5.0)
    await store.open()
    try:
        return await store.schema_version()
    finally:
        await store.close()


class Engine(ScheduleMethods, ActorMethods):
    """Durable execution on one database.

    Args:
        url: ``sqlite:///relative.db`` or ``sqlite:////absolute.db``
            (``?synchronous=NORMAL`` survives process crashes but not power loss), or
            ``postgresql://user@host:5432/database`` (``?pool_size=N``: connections
            per process, 8 by default, plus one that listens for wake-ups).
        registry: where to find workflows and steps; the decorators' default registry.
        executor: run workflows in this process (default). ``False`` makes a client
            that only starts, inspects and steers instances other processes run.
        unload_after: waits longer than this many seconds unload the instance.
        lease_ttl: seconds an executor's lease lasts without a heartbeat.
        poll_interval: seconds between looks for work started by other processes.
        max_active: instances driven at once (their memory is the executor's peak).
        max_recoveries: crash recoveries before an instance parks as poison.
        workflow_threads / step_threads: sizes of the pools ``def`` code runs in (the
            ``def`` methods of direct actor calls have threads of their own, as many).
        busy_timeout: seconds to wait for a database lock before giving up.
        store_retry_deadline: seconds to keep retrying a transiently failing database.
        max_resident_actors: actor objects kept in memory between calls (least recently
            used are evicted first; an evicted actor is restored from its saved state).
        actor_idle_after: seconds after which an actor not called is evicted.
    """

    def __init__(
        self,
        url: str = "sqlite:///perdure.db",
        *,
        registry: Registry | None = None,
        clock: Clock | None = None,
        executor: bool = True,
        unload_after: float = 5.0,
        lease_ttl: float = 10.0,
        poll_interval: float = 0.5,
        max_active: int = 1000,
        max_recoveries: int = 10,
        workflow_threads: int = 64,
        step_threads: int = 64,
        busy_timeout: float = 5.0,
        store_retry_deadline: float = 30.0,
        max_resident_actors: int = 10_000,
        actor_idle_after: float = 300.0,
    ) -> None:
        for name, value in (
            ("unload_after", unload_after),
            ("lease_ttl", lease_ttl),
            ("poll_interval", poll_interval),
            ("busy_timeout", busy_timeout),
            ("store_retry_deadline", store_retry_deadline),
            ("actor_idle_after", actor_idle_after),
        ):
            _positive(name, value)
        for name, value in (
            ("max_active", max_active),
            ("max_recoveries", max_recoveries),
            ("workflow_threads", workflow_threads),
            ("step_threads", step_threads),
            ("max_resident_actors", max_resident_actors),
        ):
            _positive(name, value, integer=True)
        crashpoints.arm_from_env()
        store, lock_dir = open_store(url, busy_timeout=busy_timeout)
        self.url = store.url
        self._subscribe = getattr(store, "subscribe", None)
        self._liveness: Liveness | None = store if isinstance(store, Liveness) else None
        """Wake-ups from other processes' commits (PostgreSQL LISTEN/NOTIFY), if the store has them."""
        faults = os.environ.get("PERDURE_STORE_FAULTS", "")
        if faults:
            store = FaultyStore(store, parse_faults(faults), crashpoints.seed_from_env())
        self._store: Store = RetryingStore(store, deadline=store_retry_deadline)
        self.registry = registry or default_registry
        self.clock: Clock = clock or SystemClock()
        self._run_executor = executor
        self._lock_dir = lock_dir
        self._options = {
            "unload_after": unload_after,
            "lease_ttl": lease_ttl,
            "poll_interval": poll_interval,
            "max_active": max_active,
            "max_recoveries": max_recoveries,
            "max_resident_actors": max_resident_actors,
            "actor_idle_after": actor_idle_after,
        }
        self._threads = (workflow_threads, step_threads)
        self._writer: Writer | None = None
        self._stats = Stats()
        self._executor: Executor | None = None
        self._pools: list[ThreadPoolExecutor] = []
        self._methods: MethodThreads | None = None
        self._rt: Runtime | None = None
        self._waiters: dict[str, list[asyncio.Future[InstanceRow]]] = {}
        self._poke = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None
        self._opened = False
        self._closed = False
        self._sync: SyncEngine | None = None

    # --- life cycle ------------------------------------------------------------

    async def open(self) -> None:
        """Open the database (migrating it) and start the executor; idempotent."""
        if self._closed:
            raise InvalidState("this Engine was closed; make a new one")
        if self._opened:
            return
        await self._store.open()
        self._opened = True
        self._writer = writer = Writer(self._store, stats=self._stats)
        writer.start()
        bind = getattr(self.clock, "bind", None)
        if bind is not None:  # a virtual clock jumps only while nothing is committed
            bind(lambda: writer.commits)
        if self._run_executor:
            self._pools = [
                ThreadPoolExecutor(self._threads[0], thread_name_prefix="perdure-workflow"),
                ThreadPoolExecutor(self._threads[1], thread_name_prefix="perdure-step"),
            ]
            self._methods = MethodThreads(self._threads[0], "perdure-method")
            rt = self._rt = Runtime(
                store=self._store,
                writer=self._writer,
                registry=self.registry,
                clock=self.clock,
                workflow_threads=self._pools[0],
                step_threads=self._pools[1],
                method_threads=self._methods,
                unload_after=float(self._options["unload_after"]),
                actors=ActorHost(
                    int(self._options["max_resident_actors"]), float(self._options["actor_idle_after"])
                ),
                stats=self._stats,
            )
            self._executor = Executor(
                rt,
                lock_dir=self._lock_dir,
                liveness=self._liveness,
                lease_ttl=float(self._options["lease_ttl"]),
                poll_interval=float(self._options["poll_interval"]),
                max_active=int(self._options["max_active"]),
                max_recoveries=int(self._options["max_recoveries"]),
                on_end=self._ended,
            )
            await self._executor.start()
            if self._subscribe is not None:
                self._subscribe(self._executor.nudge)

    async def close(self, grace: float = 10.0) -> None:
        """Stop the executor (running instances get ``grace`` seconds), flush, close."""
        if self._closed:
            return
        self._closed = True
        if self._poller is not None:
            self._poller.cancel()
        if self._executor is not None:
            await self._executor.stop(grace)
        if self._writer is not None:
            await self._writer.close()
        for pool in self._pools:
            pool.shutdown(wait=False, cancel_futures=True)
        if self._methods is not None:
            self._methods.shutdown()
        await self._store.close()

    async def __aenter__(self) -> Engine:
        await self.open()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __enter__(self) -> SyncEngine:
        from perdure._api.sync import SyncEngine

        self._sync = SyncEngine(self)
        return self._sync

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._sync is not None:
            self._sync.close()

    def _ready(self) -> Writer:
        if self._writer is None or self._closed:
            raise InvalidState("the Engine is not open; use 'async with Engine(...)' or await engine.open()")
        return self._writer

    # --- starting --------------------------------------------------------------

    def _definition(self, workflow: Workflow[Any, Any] | str) -> Definition:
        if isinstance(workflow, Workflow):
            name = workflow.name
        elif isinstance(workflow, str):
            name = workflow
        else:
            raise InvalidArgument(
                f"start() takes a @perdure.workflow function or its registered name, got {workflow!r}"
            )
        return self.registry.get(Kind.WORKFLOW, name)

    @overload
    async def start(
        self,
        workflow: Workflow[Any, R],
        /,
        *args: Any,
        id: str | None = None,
        execution_timeout: float | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[R]: ...
    @overload
    async def start(
        self,
        workflow: str,
        /,
        *args: Any,
        id: str | None = None,
        execution_timeout: float | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]: ...

    async def start(
        self,
        workflow: Workflow[Any, Any] | str,
        /,
        *args: Any,
        id: str | None = None,  # noqa: A002 - the documented keyword (id="order-1")
        execution_timeout: float | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]:
        """Start ``workflow(*args, **kwargs)`` under ``id`` (generated if None).

        Idempotent: if ``id`` exists with the same workflow and arguments, its handle
        is returned; with another workflow or other arguments, ``Conflict``.
        ``execution_timeout``: seconds after which the instance fails with
        ``WorkflowTimedOut`` as its error, wherever it stands.
        """
        if execution_timeout is not None:
            _check_seconds("execution_timeout", execution_timeout)
        writer = self._ready()
        defn = self._definition(workflow)
        data = encode_arguments(defn, args, kwargs)
        wid = check_name("workflow id", id) if id is not None else uuid.uuid4().hex
        now = self.clock.now()
        ex = self._executor
        # Run it here at once if there is room; otherwise it waits as pending and the
        # dispatcher claims it when an activation ends (memory stays bounded).
        ours = ex is not None and not self._closed and ex.reserve(wid)
        row = InstanceRow(
            id=wid,
            name=defn.name,
            status=Status.RUNNING if ours else Status.PENDING,
            input=data,
            created_at=now,
            updated_at=now,
            wake_at=now,
            owner=ex.id if ex and ours else None,
            token=1 if ours else 0,
            deadline=None if execution_timeout is None else now + execution_timeout,
        )
        epoch = ex.lease_epoch() if ex is not None else 0  # before the commit: see Executor.run
        try:
            inserted = (await writer.write((CreateInstance(row),), None))[0]
        except BaseException:
            if ex is not None and ours:
                ex.unheard(wid, epoch)  # it may have landed all the same: then it runs here
            raise
        finally:
            if ex is not None and ours:
                ex.unreserve(wid)  # run() below takes the slot for real
        if inserted:
            if ex is not None and ours:
                ex.run(row, epoch=epoch, fresh=True)
            return WorkflowHandle(self, wid)
        found = await self._store.get_instance(wid)
        if found is None:  # pragma: no cover - rows are never deleted yet
            raise NotFound(f"workflow {wid!r} vanished while starting; start it again")
        if found.name != defn.name or found.input != data:
            raise Conflict(
                f"workflow id {wid!r} already exists with "
                + (f"workflow {found.name!r}" if found.name != defn.name else "other arguments")
                + "; use another id, or the same workflow and arguments to get the existing one"
            )
        if ex is not None:
            ex.adopt(found, epoch)
        return WorkflowHandle(self, wid)

    # --- reading and steering --------------------------------------------------

    async def get(self, workflow_id: str) -> WorkflowHandle[Any]:
        """A handle to an existing instance; ``NotFound`` if there is none."""
        await self._row(workflow_id)
        return WorkflowHandle(self, workflow_id)

    async def _row(self, workflow_id: str, *, check: bool = True) -> InstanceRow:
        self._ready()
        if check:
            check_name("workflow id", workflow_id)
        row = await self._store.get_instance(workflow_id)
        if row is None:
            raise NotFound(f"no workflow with id {workflow_id!r}")
        return row

    async def info(self, workflow_id: str) -> WorkflowInfo:
        return WorkflowInfo.of(await self._row(workflow_id))

    async def history(self, workflow_id: str) -> list[HistoryEntry]:
        """The journal: one entry per recorded operation, in position order."""
        await self._row(workflow_id)
        return [HistoryEntry.of(e) for e in await self._store.load_journal(workflow_id)]

    async def runs(self, workflow_id: str) -> list[RunInfo]:
        """The runs that ended by continuing as new, oldest first."""
        await self._row(workflow_id)
        return [RunInfo.of(r) for r in await self._store.load_runs(workflow_id)]

    async def list(
        self,
        *,
        status: Status | str | None = None,
        name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> WorkflowPage:
        """Instances, newest first, optionally of one status and one workflow name."""
        self._ready()
        if status is not None:
            try:
                status = Status(status)
            except ValueError:
                raise InvalidArgument(
                    f"unknown status {status!r}; use one of {', '.join(s.value for s in Status)}"
                ) from None
        if name is not None:
            check_name("workflow name", name)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
            raise InvalidArgument(f"limit must be an integer from 1 to {MAX_PAGE}, got {limit!r}")
        if cursor is not None and not isinstance(cursor, str):
            raise InvalidArgument(f"cursor must be a str from a previous page, got {cursor!r}")
        page = await self._store.list_instances(status=status, name=name, limit=limit, cursor=cursor)
        return WorkflowPage(items=[WorkflowInfo.of(r) for r in page.items], cursor=page.cursor)

    async def count(self) -> dict[tuple[Status, str], int]:
        """How many instances there are of each (status, workflow name); one scan of the store."""
        self._ready()
        return await self._store.count_instances()

    async def cancel(self, workflow_id: str) -> Status:
        """Cancel an instance: at once if it waits, at its next await if it runs."""
        writer = self._ready()
        check_name("workflow id", workflow_id)
        after = (await writer.submit((RequestCancel(instance_id=workflow_id, now=self.clock.now()),)))[0]
        if after is None:
            raise NotFound(f"no workflow with id {workflow_id!r}")
        assert isinstance(after, Status)
        if self._executor is not None:
            self._executor.cancel_local(workflow_id)
        if after is Status.CANCELLED:
            self._ended(workflow_id)
        return after

    async def resume(self, workflow_id: str) -> None:
        """Make a parked instance run again (after fixing what parked it)."""
        writer = self._ready()
        check_name("workflow id", workflow_id)
        before = (await writer.submit((Resume(instance_id=workflow_id, now=self.clock.now()),)))[0]
        if before is None:
            raise NotFound(f"no workflow with id {workflow_id!r}")
        if before in TERMINAL:
            raise InvalidState(f"workflow {workflow_id!r} is {before}; only parked instances can be resumed")
        if self._executor is not None:
            self._executor.nudge()

    async def send(
        self, workflow_id: str, topic: str, value: Any, *, idempotency_key: str | None = None
    ) -> None:
        """Send ``value`` to a workflow on ``topic``; it gets it from ``perdure.recv(topic)``.
        (To send to an actor's mailbox, use ``send_actor``.)

        Delivered exactly once per ``idempotency_key`` (when given), in send order per
        topic, even if the workflow sleeps or no executor runs now. A workflow that does
        not exist (``NotFound``) or has ended (``InvalidState``) gets nothing.
        """
        writer = self._ready()
        check_send_target(workflow_id, "engine.send_actor(Type, key, topic, value)")
        check_name("topic", topic)
        sender_key = client_sender_key(idempotency_key)
        message = Message(target=workflow_id, topic=topic, payload=encode_message(topic, value),
                          at=self.clock.now(), sender_key=sender_key)  # fmt: skip
        status = (await writer.submit((Send(message=message),)))[0]
        if status is None:
            raise NotFound(f"no workflow with id {workflow_id!r}")
        if status is not True:  # True: delivered before it ended (a retried commit, a repeated key)
            assert isinstance(status, Status)
            if status in TERMINAL:
                raise InvalidState(f"workflow {workflow_id!r} is {status.value}; it takes no more messages")
        if self._executor is not None:
            self._executor.nudge()

    async def get_event(self, workflow_id: str, key: str, *, type: Any = Any) -> Any:  # noqa: A002 - mirrors msgspec
        """The value the workflow last published under ``key``, or None if not yet."""
        check_name("event key", key)
        await self._row(workflow_id)
        data = await self._store.get_event(workflow_id, key)
        return None if data is None else serializer.decode(data, type)

    async def wait_event(
        self,
        workflow_id: str,
        key: str,
        *,
        timeout: float | None = None,
        type: Any = Any,  # noqa: A002
    ) -> Any:
        """Wait until the workflow publishes ``key``; ``ResultTimeout`` after ``timeout``."""
        check_name("event key", key)
        if timeout is not None:
            _check_seconds("timeout", timeout, zero_ok=True)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        poll = 0.02
        while True:
            row = await self._row(workflow_id)
            data = await self._store.get_event(workflow_id, key)
            if data is not None:
                return serializer.decode(data, type)
            if row.status in TERMINAL:
                raise InvalidState(
                    f"workflow {workflow_id!r} is {row.status.value} and never set event {key!r}"
                )
            wait = poll if deadline is None else min(poll, deadline - loop.time())
            if wait <= 0:
                raise ResultTimeout(f"workflow {workflow_id!r} did not set event {key!r} within {timeout}s")
            await asyncio.sleep(wait)
            poll = min(poll * 2, 0.5)

    async def query(self, workflow_id: str, name: str, *args: Any) -> Any:
        """Ask a workflow's query handler (``perdure.on_query``) about its current state.

        A workflow loaded in this process answers from memory; any other is replayed
        read-only from its journal up to its last recorded operation. Queries never
        change the workflow or its journal.
        """
        row = await self._row(workflow_id)
        check_name("query name", name)
        act = self._executor.local(workflow_id) if self._executor is not None else None
        if act is not None and name in act.queries:
            return act.answer(name, args)
        return await answer_query(self._query_runtime(), row, name, args)

    def _query_runtime(self) -> Runtime:
        if self._rt is None:
            pool = ThreadPoolExecutor(4, thread_name_prefix="perdure-query")
            self._pools.append(pool)
            self._rt = Runtime(
                store=self._store, writer=self._ready(), registry=self.registry, clock=self.clock,
                workflow_threads=pool, step_threads=pool, unload_after=0.0,
            )  # fmt: skip
        return self._rt

    async def result(self, workflow_id: str, *, timeout: float | None = None) -> Any:
        """Wait for the instance to end; see ``WorkflowHandle.result``."""
        row = await self._wait(workflow_id, timeout)
        if row.status is Status.COMPLETED:
            defn = self.registry.find(Kind.WORKFLOW, row.name)
            ret = defn.hints().get("return", Any) if defn else Any
            return serializer.decode_output(row.output, ret, f"workflow {workflow_id!r}")
        if row.status is Status.CANCELLED:
            raise WorkflowCancelled(workflow_id)
        info = serializer.decode_error(row.error) if row.error else serializer.ErrorInfo("unknown", "")
        raise WorkflowFailed(workflow_id, info.type, info.message, info.traceback)

    async def _wait(self, workflow_id: str, timeout: float | None, *, check: bool = True) -> InstanceRow:
        """The instance's final row; ``check=False`` for internal ids (actor invocations)."""
        if timeout is not None:
            _check_seconds("timeout", timeout, zero_ok=True)
        self._ready()
        if check:
            check_name("workflow id", workflow_id)
        fut: asyncio.Future[InstanceRow] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(workflow_id, []).append(fut)
        try:
            # This executor hands over the final row of what it runs (see ``_ended``: it
            # wakes the poller if the instance leaves it unfinished); the rest (run
            # elsewhere, ended already, or not yet) is read by one poller for all waiters.
            ex = self._executor
            if ex is None or workflow_id not in ex.active:
                self._wake_poller()
            if timeout is None:
                return await fut
            done, _ = await asyncio.wait([fut], timeout=timeout)
            if done:
                return fut.result()
            row = await self._row(workflow_id, check=check)
            if row.status in TERMINAL:
                return row
            raise ResultTimeout(f"workflow {workflow_id!r} is still {row.status.value} after {timeout}s")
        finally:
            waiters = self._waiters.get(workflow_id)
            if waiters is not None:
                waiters.remove(fut)
                if not waiters:
                    del self._waiters[workflow_id]

    def _wake_poller(self) -> None:
        """Have the poller read the instances waited for now (started if it is not running)."""
        self._poke.set()
        if self._poller is None or self._poller.done():
            loop = asyncio.get_running_loop()
            self._poller = loop.create_task(self._poll_waiters(), name="perdure-result-poller")

    async def _poll_waiters(self) -> None:
        """Read every instance someone waits for and this process does not run, in one query,
        at once and then more slowly (other processes' progress), until nobody waits."""
        poll = 0.02
        while self._waiters and not self._closed:
            self._poke.clear()
            ex = self._executor
            ids = [i for i in self._waiters if ex is None or i not in ex.active]
            if ids:
                try:
                    rows = {r.id: r for r in await self._store.get_instances(ids)}
                except StoreError:
                    rows = None  # try again at the next poll
                for iid in ids if rows is not None else ():
                    row = rows.get(iid) if rows is not None else None
                    if row is None:
                        self._settle(iid, error=NotFound(f"no workflow with id {iid!r}"))
                    elif row.status in TERMINAL:
                        self._settle(iid, row=row)
            try:
                await asyncio.wait_for(self._poke.wait(), poll)
                poll = 0.02
            except TimeoutError:
                poll = min(poll * 2, 1.0)

    def _settle(
        self, workflow_id: str, *, row: InstanceRow | None = None, error: Exception | None = None
    ) -> None:
        for fut in self._waiters.get(workflow_id, ()):
            if not fut.done():
                if row is not None:
                    fut.set_result(row)
                elif error is not None:
                    fut.set_exception(error)

    def _ended(self, workflow_id: str, final: InstanceRow | None = None) -> None:
        if final is not None and final.status in TERMINAL:
            self._settle(workflow_id, row=final)
        elif workflow_id in self._waiters:
            self._wake_poller()  # left this executor unfinished (waiting, parked, taken): read it

    async def executors(self) -> builtins.list[ExecutorInfo]:
        """The executors sharing this database, by id: their leases, and their shards."""
        self._ready()
        now = SystemClock().now()  # leases are on real time, even when durable time is virtual
        return [ExecutorInfo.of(r, now) for r in await self._store.list_executors()]

    @property
    def executor_stats(self) -> dict[str, int]:
        """Counters of this process's executor: activations, recoveries, parked, and of
        actors: resident now, activations (restored or made in memory), evictions; and the
        number of shards it leases now."""
        ex = self._executor
        if ex is None:
            return {}
        host = ex.rt.actors
        return {**ex.stats, **host.stats, "actors_resident": host.resident, "shards": len(ex.shards)}

    @property
    def stats(self) -> Stats:
        """Live counters and histograms of this engine (commits, steps, claim lag), for metrics."""
        return self._stats


def _check_seconds(name: str, value: object, *, zero_ok: bool = False) -> None:
    """``value`` must be a finite number of seconds, > 0 (>= 0 with ``zero_ok``)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value < 0
        or (value == 0 and not zero_ok)
    ):
        bound = ">= 0" if zero_ok else "> 0"
        raise InvalidArgument(f"{name} must be a number of seconds {bound}, got {value!r}")
