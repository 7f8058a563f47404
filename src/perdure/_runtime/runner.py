"""Drives one loaded instance: replays its journal, runs new steps, records the end.

An ``Activation`` is one instance loaded in this executor under one claim token.
Durable operations in workflow code call into it (found through
``context.activation``): each takes the next journal position from the cursor,
returns the recorded result while replaying, and runs and records otherwise.
``async def`` workflows run as a task on the loop; ``def`` workflows run in a
worker thread and block on the loop for each operation. Steps run on the loop
(``async def``) or in the step thread pool (``def``).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import enum
import functools
import inspect
import logging
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

from perdure._codec import serializer
from perdure._journal.cursor import Cursor, JournalGap
from perdure._journal.writer import Writer
from perdure._model import crashpoints
from perdure._model.definitions import Definition, Kind, Registry
from perdure._model.errors import (
    ContinueAsNew,
    InvalidArgument,
    InvalidState,
    NonDeterminismError,
    PerdureError,
    QueryFailed,
    StaleClaim,
    StepFailed,
    StepTimedOut,
    StoreError,
    Suspend,
    WaitExpired,
    WorkflowCancelled,
    WorkflowTimedOut,
)
from perdure._model.records import (
    TERMINAL,
    Append,
    AppendOutcome,
    InstanceRow,
    InstanceUpdate,
    JournalEntry,
    Outcome,
    RetryState,
    Status,
)
from perdure._model.stats import Stats
from perdure._runtime import context
from perdure._runtime.actors import ActorHost, ActorReads, ActorSession
from perdure._runtime.attempts import INVOKE, Command, Record, WaitUntil, attempts
from perdure._runtime.clock import Clock
from perdure._runtime.handoff import MethodThreads
from perdure._runtime.ready import Ready
from perdure._store.protocol import Store

T = TypeVar("T")
log = logging.getLogger("perdure.runner")
_JSON = serializer.JSON


@dataclass(slots=True, kw_only=True)
class Runtime:
    """What every activation of one executor shares."""

    store: Store
    writer: Writer
    registry: Registry
    clock: Clock
    workflow_threads: ThreadPoolExecutor
    step_threads: ThreadPoolExecutor
    unload_after: float
    """Waits longer than this unload the instance instead of keeping it in memory."""
    nudge: Callable[[], None] = lambda: None
    """Tell the executor that new work may be ready (a child started here)."""
    actors: ActorHost = field(default_factory=lambda: ActorHost(10_000, 300.0))
    lease_epoch: Callable[[], int] = lambda: 0
    """The executor's lease epoch: it moves whenever the lease may have lapsed (the process
    was paused or cut off past its expiry), so activations re-check their claim before a step."""
    types: dict[int, tuple[dict[str, Any], Any]] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    """Counters for ``/metrics``: each step that ends adds its latency and retries."""
    method_threads: MethodThreads | None = None
    """Where the ``def`` methods of direct actor calls run (``None``: in ``workflow_threads``)."""
    actor_reads: ActorReads = field(init=False)
    """Actor rows read many at once (direct calls to actors that are not resident)."""

    def __post_init__(self) -> None:
        self.actor_reads = ActorReads(self.store)

    def hints(self, defn: Definition) -> tuple[dict[str, Any], Any]:
        """Parameter types and return type of ``defn``, resolved once."""
        found = self.types.get(id(defn))
        if found is None:
            hints = dict(defn.hints())  # a copy: the definition's hints are cached and shared
            ret = hints.pop("return", Any)
            found = self.types[id(defn)] = (hints, ret)
        return found


class End(enum.Enum):
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    WAITING = "waiting"
    PARKED = "parked"
    STALE = "stale"
    """Another executor holds the instance now; nothing more to do here."""
    ABORTED = "aborted"
    """The store failed for good; the instance is still ours and must be driven again."""
    DRAINED = "drained"
    """Stopped by shutdown; released for any executor to pick up."""


def decode_input(rt: Runtime, defn: Definition, data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Rebuild call arguments from a payload made by ``serializer.encode_input``."""
    values = serializer.decode_input(defn.signature, rt.hints(defn)[0], data)
    bound = inspect.BoundArguments(defn.signature, values)
    return bound.args, bound.kwargs


def _failure(entry: JournalEntry) -> StepFailed:
    info = serializer.decode_error(entry.result)
    return StepFailed(entry.name, info.type, info.message, info.traceback, entry.attempts)


class Activation:
    """One instance, loaded under claim ``token``."""

    def __init__(
        self, rt: Runtime, row: InstanceRow, defn: Definition, cursor: Cursor, retries: list[RetryState]
    ) -> None:
        self.rt = rt
        self.row = row
        """The instance as claimed or created."""
        self.id = row.id
        self.token = row.token
        self.lease_epoch = rt.lease_epoch()
        self.defn = defn
        self.cursor = cursor
        self.retries = {r.position: r for r in retries} if retries else {}
        self.retried = bool(retries)
        """The instance may hold retry state (``retries``, or one recorded since): the end clears it."""
        self.started_children = False
        """A child was started in this activation (see ``_finish``)."""
        self.loop = asyncio.get_running_loop()
        self.cancel_requested = row.cancel_requested
        self.deadline = row.deadline
        self.timed_out = False
        self.final: InstanceUpdate | None = None
        """What the activation recorded when it ended or unloaded."""
        self._deferred: list[Append] = []
        self._soon: set[asyncio.Future[list[Outcome]]] = set()
        self._lost_write: BaseException | None = None
        """A record sent without waiting that did not land: the end must not be recorded."""
        self._cancel_delivered = False
        self._cancelled: asyncio.Event | None = None
        """Set with ``cancel_requested``: ends an in-memory wait (a def workflow has no task to cancel).
        Made by the first wait that needs it (``_cancel_event``): most activations never wait."""
        self.suspending: BaseException | None = None
        self.read_only = False
        """A replay to answer queries: it stops at the first operation not recorded, writing nothing."""
        self.queries: dict[str, Callable[..., Any]] = {}
        self.draining = False
        """Set by a graceful shutdown, or when this executor gives up the instance's shard: the next
        operation unloads the instance (its steps in flight are recorded first)."""
        self.broken: BaseException | None = None
        """Set when replay went wrong or the claim was lost: every later operation re-raises it."""
        self._inflight = 0
        self._idle: asyncio.Event | None = None
        """Set while no step runs on the loop; made by the first that does (none yet: idle)."""
        self.task: asyncio.Task[Any] | None = None
        self._decoders: dict[str, tuple[Definition, serializer.PayloadDecoder]] = {}
        """Step result decoders by step name, with the definition they are for (see ``_result_decoder``)."""
        self.actor: ActorSession | None = None
        """An actor invocation: the actor whose method ``defn`` is."""
        self.direct = False
        """A direct actor call (see ``direct.py``): not stored yet, so the first durable
        operation raises ``LeaveDirect`` instead of recording anything."""

    # --- helpers for operations ----------------------------------------------

    def check(self) -> None:
        # The replay fast path (step_call) runs exactly when nothing here would raise (timeouts
        # aside in read-only): keep its condition in step with these checks.
        if self.broken is not None:
            raise self.broken
        if self.timed_out and not self.read_only:
            assert self.deadline is not None
            raise WorkflowTimedOut(self.id, self.deadline)
        if self.suspending is not None:
            # Unwinding to unload: ``finally`` blocks must not record anything now; they
            # run for real when the code runs again.
            raise self.suspending
        if self.draining:
            self.suspend(self.rt.clock.now())
        if self.direct:
            raise LeaveDirect

    def suspend(self, wake_at: float | None, topic: str | None = None) -> NoReturn:
        """Unload the instance: raise ``Suspend``, and again at every later operation."""
        self.suspending = Suspend(wake_at, topic)
        raise self.suspending

    def continue_as_new(self, data: bytes) -> NoReturn:
        """End this run; the next starts from the top with ``data`` and an empty journal."""
        self.check()
        self.suspending = ContinueAsNew(data)
        raise self.suspending

    def deliver_cancel(self) -> None:
        """Raise the pending cancellation here, once: at a new operation or a wait.

        Replayed operations never raise it, so the code reaches the point where it
        was; after it, ``finally`` blocks may still run durable operations.
        """
        if self.cancel_requested and not self._cancel_delivered:
            self._cancel_delivered = True
            if self.defn.is_async:
                raise asyncio.CancelledError(f"workflow {self.id!r} was cancelled")
            raise WorkflowCancelled(self.id)

    def take(self, kind: str, name: str) -> tuple[int, JournalEntry | None]:
        self.check()
        try:
            pos, entry = self.cursor.next(kind, name)
        except NonDeterminismError as exc:
            deadline = context.wait_deadline.get()
            if deadline is not None and self.cursor.recorded_kind() == "timeout":
                # This wait ran out of a wait_for's time here the first time: the same now.
                self.cursor.position += 1
                raise WaitExpired(deadline) from None
            self.broken = exc
            raise
        if entry is None:
            if self.read_only:
                self.suspending = _QueryStop()  # the state queries see: as of the last record
                raise self.suspending
            self.deliver_cancel()
        return pos, entry

    def blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """From a ``def`` workflow's thread: run ``coro`` on the loop and wait for it (inside
        the thread's ``perdure.wait_for`` deadline, if any)."""
        deadline = context.wait_deadline.get()
        if deadline is not None:
            coro = _within(deadline, coro)
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def append(self, append: Append) -> None:
        """Commit ``append``, after the step records deferred so far, in one transaction."""
        await self._submit((*self.take_deferred(), append))

    async def flush(self) -> None:
        """Commit the deferred step records now: before a step's function runs, so that no
        side effect can depend on a result that is not recorded yet.

        If the executor's lease lapsed since this activation last looked (a zombie woken
        from a pause or a partition), the claim is proven first with an empty fenced append:
        another executor may have taken the instance and recorded this very step already.
        """
        epoch = self.rt.lease_epoch()
        if epoch != self.lease_epoch:
            await self._submit((*self.take_deferred(), Append(instance_id=self.id, token=self.token)))
            self.lease_epoch = epoch
        elif self._deferred:
            await self._submit(self.take_deferred())

    def take_deferred(self) -> tuple[Append, ...]:
        """The step records handed back to the code but not committed yet (see ``_run_step``)."""
        ops = tuple(self._deferred)
        self._deferred.clear()
        return ops

    async def _submit(self, ops: tuple[Append, ...]) -> None:
        try:
            outcomes = await self.rt.writer.write(ops, self)
        except StoreError as exc:
            self._store_failed(exc)
        for outcome in outcomes:
            self._accept(outcome)

    def append_blocking(self, append: Append) -> None:
        """``append`` from a ``def`` workflow's thread: one hop to the loop and back."""
        done: concurrent.futures.Future[list[Outcome]] = concurrent.futures.Future()

        def submit() -> None:
            self.rt.writer.submit((append,)).add_done_callback(functools.partial(_relay, done))

        self.loop.call_soon_threadsafe(submit)
        try:
            outcome = done.result()[0]
        except StoreError as exc:
            self._store_failed(exc)
        self._accept(outcome)

    def _store_failed(self, exc: StoreError) -> NoReturn:
        # The database failed, not the workflow: abort this activation (it is driven
        # again later) even if user code catches the error.
        self.broken = exc
        raise exc

    def _accept(self, outcome: Outcome) -> None:
        assert isinstance(outcome, AppendOutcome)
        if not outcome.ok:
            self.broken = StaleClaim(f"instance {self.id!r} was claimed by another executor")
            raise self.broken
        if outcome.cancel_requested:
            self.loop.call_soon_threadsafe(self.request_cancel)

    def append_soon(self, op: Append) -> None:
        """Commit ``op`` without waiting; later appends of this instance commit after it."""

        def submit() -> None:
            fut = self.rt.writer.submit((*self.take_deferred(), op))
            self._soon.add(fut)
            fut.add_done_callback(self._check_soon)

        if self.defn.is_async:
            submit()
        else:
            self.loop.call_soon_threadsafe(submit)

    def _check_soon(self, fut: asyncio.Future[Any]) -> None:
        self._soon.discard(fut)
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is None and not all(o.ok for o in fut.result()):
            exc = StaleClaim(f"instance {self.id!r} was claimed by another executor")
        if exc is not None:
            self.broken = self._lost_write = exc

    def request_cancel(self) -> None:
        if self.cancel_requested:
            return
        self.cancel_requested = True
        if self._cancelled is not None:
            self._cancelled.set()
        if self.task is not None and self.defn.is_async and not self.task.done():
            self._cancel_delivered = True
            self.task.cancel()

    def _cancel_event(self) -> asyncio.Event:
        """The event a wait in memory ends on: set once the instance is cancelled or timed out."""
        if self._cancelled is None:
            self._cancelled = asyncio.Event()
            if self.cancel_requested or self.timed_out:
                self._cancelled.set()
        return self._cancelled

    async def wait_until(self, when: float, pos: int | None = None) -> None:
        """Wait for ``when``: in memory if it is near, else unload the instance until then.

        Inside ``perdure.wait_for`` the wait ends at its deadline if that comes first (see
        ``expire``); ``pos`` is the unrecorded position of the operation that waits, if any.
        """
        if self.read_only:
            self.suspending = _QueryStop()
            raise self.suspending
        self.deliver_cancel()
        deadline = context.wait_deadline.get()
        expires = deadline is not None and deadline < when
        if expires:
            assert deadline is not None
            when = deadline
        if when - self.rt.clock.now() > self.rt.unload_after:
            self.suspend(when)
        await self.rt.clock.sleep_until(when, None if self._cancel_delivered else self._cancel_event())
        self.deliver_cancel()
        self.check()  # an execution timeout that fell during the wait
        if expires:
            await self.expire(pos)

    async def wait_for_message(self, pos: int, wake_at: float | None, topic: str) -> NoReturn:
        """Unload until ``wake_at`` or a message on ``topic`` (a child's end included); inside
        ``perdure.wait_for``, end the wait at its deadline instead once that has passed."""
        deadline = context.wait_deadline.get()
        if deadline is not None:
            if self.rt.clock.now() >= deadline:
                await self.expire(pos)
            wake_at = deadline if wake_at is None else min(wake_at, deadline)
        self.suspend(wake_at, topic)

    async def expire(self, pos: int | None) -> NoReturn:
        """A wait_for's deadline passed at this wait: record it, at the waiting operation's
        own position (``pos``) or at the next one, and raise ``WaitExpired``."""
        deadline = context.wait_deadline.get()
        assert deadline is not None
        if pos is None:
            pos, entry = self.take("timeout", "wait_for")
            if entry is not None:
                raise WaitExpired(deadline)
        marker = self.make_entry(pos, "timeout", "wait_for", deadline, ok=True)
        await self.append(Append(instance_id=self.id, token=self.token, entries=(marker,)))
        raise WaitExpired(deadline)

    # --- steps -----------------------------------------------------------------

    def call_step(self, step: Definition, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A step called from workflow code: an awaitable (async workflows) or its value."""
        pos, entry = self.take("step", step.name)
        if entry is not None:
            if entry.ok:
                value, error = serializer.decode_with(self._result_decoder(step), entry.result), None
            else:
                value, error = None, _failure(entry)
            if self.defn.is_async:
                return Ready(value, error)
            if error is not None:
                raise error
            return value
        plan = self._plan(pos, step, args, kwargs)
        key = f"{self.id}:{pos}"
        if self.defn.is_async:
            return self._run_step(plan, key, step, args, kwargs)
        if step.is_async or step.timeout is not None:
            return self.blocking(self._run_step(plan, key, step, args, kwargs))
        return self._run_step_inline(plan, key, step, args, kwargs)

    def _result_decoder(self, step: Definition) -> serializer.PayloadDecoder:
        """The decoder of ``step``'s return type, looked up once per activation."""
        found = self._decoders.get(step.name)
        if found is None or found[0] is not step:
            found = self._decoders[step.name] = (step, serializer.decoder(self.rt.hints(step)[1]))
        return found[1]

    def _plan(
        self, pos: int, step: Definition, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Generator[Command, Any, JournalEntry]:
        try:
            step_input: bytes | None = serializer.encode({"args": args, "kwargs": kwargs})
        except (TypeError, OverflowError):
            step_input = None  # recorded for people to read; replay does not need it
        return attempts(
            step=step, instance_id=self.id, token=self.token, position=pos, step_input=step_input,
            state=self.retries.get(pos), now=self.rt.clock.now,
        )  # fmt: skip

    def _outcome(self, step: Definition, entry: JournalEntry) -> Any:
        self.rt.stats.step_ended(entry.ended_at - entry.started_at, entry.attempts, bool(entry.ok))
        if not entry.ok:
            raise _failure(entry)
        # Hand back exactly what replay will hand back.
        return serializer.decode_with(self._result_decoder(step), entry.result)

    async def _run_step(
        self,
        plan: Generator[Command, Any, JournalEntry],
        key: str,
        step: Definition,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Drive ``plan`` on the loop."""
        self._inflight += 1
        if self._idle is None:
            self._idle = asyncio.Event()
        self._idle.clear()
        try:
            answer: Any = None
            while True:
                try:
                    command = plan.send(answer)
                except StopIteration as stop:
                    return self._outcome(step, stop.value)
                answer = None
                if command is INVOKE:
                    answer = await self._invoke_flushed(step, key, args, kwargs)
                elif isinstance(command, Record):
                    if command.op.entries:
                        # The step's record: it goes with this instance's next write, and
                        # flush() commits it before any step runs. A step and then the
                        # workflow's end thus share one commit.
                        self._deferred.append(command.op)
                    else:
                        self.retried = True
                        await self.append(command.op)
                else:
                    assert isinstance(command, WaitUntil)
                    await self.wait_until(command.when, _position(key))
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    def _run_step_inline(
        self,
        plan: Generator[Command, Any, JournalEntry],
        key: str,
        step: Definition,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Drive ``plan`` in a ``def`` workflow's thread: the step runs right here."""
        answer: Any = None
        while True:
            try:
                command = plan.send(answer)
            except StopIteration as stop:
                return self._outcome(step, stop.value)
            answer = None
            if command is INVOKE:
                epoch = self.rt.lease_epoch()
                if epoch != self.lease_epoch:  # see flush()
                    self.append_blocking(Append(instance_id=self.id, token=self.token))
                    self.lease_epoch = epoch
                try:
                    answer = (True, _in_scope(key, step.fn, args, kwargs))
                    crashpoints.hit("step.after_effect")
                except Exception as exc:  # noqa: BLE001 - the plan decides what a failure means
                    answer = (False, exc)
            elif isinstance(command, Record):
                self.retried = self.retried or not command.op.entries
                self.append_blocking(command.op)
            else:
                assert isinstance(command, WaitUntil)
                self.blocking(self.wait_until(command.when, _position(key)))

    async def _invoke_flushed(
        self, step: Definition, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[bool, Any]:
        """Commit what is deferred, then run the step: (True, value) or (False, error)."""
        while True:
            await self.flush()
            try:
                value = await self._invoke(step, key, args, kwargs)
            except _LeaseLapsed:
                continue  # flush() proves the claim again, or raises StaleClaim
            except Exception as exc:  # noqa: BLE001 - the plan decides what a failure means
                return False, exc
            crashpoints.hit("step.after_effect")
            return True, value

    async def _invoke(self, step: Definition, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if step.is_async:
            scope = context.step_scope.set(key)
            try:
                coro = step.fn(*args, **kwargs)
                if step.timeout is None:
                    return await coro
                try:
                    return await asyncio.wait_for(coro, step.timeout)
                except TimeoutError:
                    raise StepTimedOut(f"step {step.name!r} ran longer than {step.timeout}s") from None
            finally:
                context.step_scope.reset(scope)
        epoch = self.lease_epoch

        def fenced() -> Any:
            # Checked again on the step's thread at the last moment: a pause between the
            # loop's check and this thread starting must not let a zombie run the step.
            if self.rt.lease_epoch() != epoch:
                raise _LeaseLapsed
            return _in_scope(key, step.fn, args, kwargs)

        call = self.loop.run_in_executor(self.rt.step_threads, fenced)
        if step.timeout is None:
            return await call
        try:
            return await asyncio.wait_for(call, step.timeout)
        except TimeoutError:
            # The thread cannot be stopped; its late result is dropped.
            raise StepTimedOut(f"step {step.name!r} ran longer than {step.timeout}s") from None

    # --- deterministic helpers -------------------------------------------------

    def record(self, kind: str, make: Callable[[], T], type_: Any) -> T:
        """``now``/``random``/``uuid4``/``sleep``: the recorded value on replay, a fresh recorded one otherwise."""
        pos, entry = self.take(kind, kind)
        if entry is not None:
            value: T = serializer.decode(entry.result, type_)
            return value
        value = make()
        self.append_soon(
            Append(instance_id=self.id, token=self.token, entries=(self.make_entry(pos, kind, kind, value),))
        )
        return value

    def make_entry(self, pos: int, kind: str, name: str, value: Any, *, ok: bool = True) -> JournalEntry:
        now = self.rt.clock.now()
        result = serializer.encode(value) if ok else serializer.encode_error(value)
        return JournalEntry(
            position=pos, kind=kind, name=name, ok=ok, result=result, started_at=now, ended_at=now
        )

    # --- durable time ----------------------------------------------------------

    def sleep_until(self, when: float) -> Any:
        """Wait until ``when``: an awaitable (async workflows) or blocking (def workflows).

        The deadline is recorded at the sleep's position, so a replay, however late,
        waits for the same instant; a long wait unloads the instance meanwhile.
        """
        wake = self.record("sleep", lambda: when, float)
        if self.defn.is_async:
            return self.wait_until(wake)
        self.blocking(self.wait_until(wake))
        return None

    # --- queries -----------------------------------------------------------------

    def on_query(self, name: str, handler: Callable[..., Any]) -> None:
        """Register a read-only handler; not recorded (replay registers it again)."""
        self.queries[name] = handler

    def answer(self, name: str, args: tuple[Any, ...]) -> Any:
        handler = self.queries.get(name)
        if handler is None:
            known = ", ".join(sorted(self.queries)) or "none"
            raise InvalidArgument(f"workflow {self.id!r} has no query {name!r} (it registers: {known})")
        try:
            value = handler(*args)
            # The same plain JSON a remote caller would get.
            return serializer.decode(serializer.encode(value))
        except Exception as exc:
            raise QueryFailed(
                f"query {name!r} of workflow {self.id!r} raised {type(exc).__name__}: {exc}"
            ) from exc

    # --- the run ---------------------------------------------------------------

    async def drive(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[End, float | None]:
        """Run the workflow code to its end, a suspension, or a failure, and record that."""
        if self.deadline is None:
            return await self._drive(args, kwargs)
        if self.rt.clock.now() >= self.deadline:
            return await self._time_out(), None
        watchdog = self.loop.create_task(self._watchdog(self.deadline))
        try:
            return await self._drive(args, kwargs)
        finally:
            watchdog.cancel()

    async def _watchdog(self, deadline: float) -> None:
        await self.rt.clock.sleep_until(deadline)
        self.timed_out = True
        if self._cancelled is not None:
            self._cancelled.set()  # ends an in-memory wait of a def workflow too
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _time_out(self) -> End:
        assert self.deadline is not None
        return await self._finish(
            Status.FAILED, error=serializer.encode_error(WorkflowTimedOut(self.id, self.deadline))
        )

    async def _drive(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[End, float | None]:
        try:
            value = await self._run_code(args, kwargs)
            if self.broken is not None:
                raise self.broken
            self.cursor.finish()
        except Suspend as s:
            return await self._finish(Status.WAITING, wake_at=s.wake_at, waiting_topic=s.topic), s.wake_at
        except ContinueAsNew as c:
            now = self.rt.clock.now()
            return await self._finish(Status.WAITING, wake_at=now, new_run_input=c.input), now
        except NonDeterminismError as exc:
            return await self._park(f"NonDeterminismError: {exc}"), None
        except StaleClaim:
            return End.STALE, None
        except (asyncio.CancelledError, WorkflowCancelled) as exc:
            if self.timed_out:
                return await self._time_out(), None
            if isinstance(exc, asyncio.CancelledError) and not self.cancel_requested:
                raise  # the executor is stopping, not a cancellation of this workflow
            return await self._finish(Status.CANCELLED), None
        except PerdureError as exc:
            if exc is self.broken:  # a store failure seen by an operation, not the user's error
                raise
            return await self._finish(Status.FAILED, error=serializer.encode_error(exc)), None
        except Exception as exc:  # noqa: BLE001 - the user's error is the workflow's outcome
            return await self._finish(Status.FAILED, error=serializer.encode_error(exc)), None
        return await self._complete(value), None

    async def _complete(self, value: Any) -> End:
        try:
            output = serializer.encode(value)
        except (TypeError, OverflowError) as exc:
            err = TypeError(
                f"{self.defn.kind} {self.defn.name!r} returned a value perdure cannot serialize: {exc}"
            )
            return await self._finish(Status.FAILED, error=serializer.encode_error(err))
        state = None
        if self.actor is not None:
            try:
                state = self.actor.snapshot()
            except (TypeError, OverflowError) as exc:  # nothing of the call is saved
                return await self._finish(Status.FAILED, error=serializer.encode_error(exc))
        return await self._finish(Status.COMPLETED, output=output, actor_state=state)

    async def _run_code(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fn = self.defn.fn if self.actor is None else self._call_method
        if self.defn.is_async:
            ctx = contextvars.copy_context()
            ctx.run(context.activation.set, self)
            self.task = self.loop.create_task(fn(*args, **kwargs), context=ctx)
            return await self.task
        if self.direct and self.rt.method_threads is not None:
            return await self.rt.method_threads.run(_as_activation, self, fn, args, kwargs)
        return await self.loop.run_in_executor(
            self.rt.workflow_threads, _as_activation, self, fn, args, kwargs
        )

    def _call_method(self, *args: Any, **kwargs: Any) -> Any:
        """The actor method on its object (for async methods, a coroutine that makes the
        object first: in the invocation's task, where ``__init__`` may use durable operations)."""
        session = self.actor
        assert session is not None
        if not self.defn.is_async:
            return self.defn.fn(session.instance(), *args, **kwargs)

        async def call() -> Any:
            return await self.defn.fn(session.instance(), *args, **kwargs)

        return call()

    async def _park(self, reason: str) -> End:
        log.warning("parking %s: %s", self.id, reason)
        return await self._finish(Status.PARKED, park_reason=reason)

    async def _finish(
        self,
        status: Status,
        *,
        output: bytes | None = None,
        error: bytes | None = None,
        wake_at: float | None = None,
        park_reason: str | None = None,
        waiting_topic: str | None = None,
        new_run_input: bytes | None = None,
        actor_state: bytes | None = None,
    ) -> End:
        # Steps the code started but never awaited still commit under this claim: let
        # them land before the end is recorded, so nothing follows it in the journal.
        if self._idle is not None:
            await self._idle.wait()
        if status is Status.WAITING and self.deadline is not None:
            wake_at = self.deadline if wake_at is None else min(wake_at, self.deadline)
        update = InstanceUpdate(
            status=status,
            updated_at=self.rt.clock.now(),
            output=output,
            error=error,
            wake_at=wake_at,
            owner=None,
            park_reason=park_reason,
            waiting_topic=waiting_topic,
            new_run_input=new_run_input,
            clear_retries=self.retried and status in TERMINAL,
            # Statements the store may spare: no child was ever started (this run's journal
            # holds them all; an earlier run's children are not known here), no parent.
            close_children=self.started_children or self.row.run > 0 or "child" in self.cursor.kinds,
            wake_parent=self.row.parent_id is not None,
            actor_id=None if self.actor is None else self.actor.actor_id,
            actor_state=actor_state,
            state_version=0 if self.actor is None else self.actor.version,
        )
        if self._soon:  # records sent without waiting: they must have landed first
            await asyncio.wait(set(self._soon))
        if self._lost_write is not None:
            raise self._lost_write
        ops = (*self.take_deferred(), Append(instance_id=self.id, token=self.token, update=update))
        outcomes = await self.rt.writer.write(ops, self)
        ok = all(isinstance(o, AppendOutcome) and o.ok for o in outcomes)
        if ok:
            self.final = update
            session = self.actor
            if session is not None:
                crashpoints.hit("actor.after_state_commit")
            if session is not None and status is Status.COMPLETED and session.obj is not None:
                # Committed: the object now equals the stored state; keep it for the next call.
                revision = session.revision + (actor_state is not None)
                self.rt.actors.keep(session.actor_id, session.obj, revision, self.rt.clock.now())
        return End(status.value) if ok else End.STALE


class LeaveDirect(BaseException):
    """A direct actor call reached a durable operation: it stops there, nothing recorded, and
    the call takes the usual path (a ``BaseException``, so ``except Exception`` lets it pass)."""


class _QueryStop(BaseException):
    """Ends a read-only replay at the first operation that was not recorded."""


async def answer_query(rt: Runtime, row: InstanceRow, name: str, args: tuple[Any, ...]) -> Any:
    """Answer query ``name`` by replaying ``row``'s journal read-only up to its current state."""
    loaded = await load(rt, row)
    if isinstance(loaded, str):
        raise InvalidState(f"cannot query workflow {row.id!r}: {loaded}")
    act, args_, kwargs = loaded
    act.read_only = True
    act.cancel_requested = False
    try:
        await act._run_code(args_, kwargs)
    except (Exception, _QueryStop, Suspend, ContinueAsNew, asyncio.CancelledError):  # noqa: BLE001, S110
        pass  # where or how the code stopped does not matter: the handlers it registered do
    return act.answer(name, args)


async def _within(deadline: float, coro: Coroutine[Any, Any, T]) -> T:
    token = context.wait_deadline.set(deadline)
    try:
        return await coro
    finally:
        context.wait_deadline.reset(token)


def _position(key: str) -> int:
    """The journal position in a step's idempotency key (``instance:position``)."""
    return int(key.rsplit(":", 1)[1])


def _relay(target: concurrent.futures.Future[T], source: asyncio.Future[T]) -> None:
    if source.cancelled():
        target.cancel()
    elif (exc := source.exception()) is not None:
        target.set_exception(exc)
    else:
        target.set_result(source.result())


class _LeaseLapsed(Exception):
    """The executor's lease lapsed between deciding to run a step and running it."""


def _in_scope(key: str, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    token = context.step_scope.set(key)
    try:
        return fn(*args, **kwargs)
    finally:
        context.step_scope.reset(token)


def _as_activation(act: Activation, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
    token = context.activation.set(act)
    try:
        return fn(*args, **kwargs)
    finally:
        context.activation.reset(token)


_current_activation = context.activation.get
_current_step_scope = context.step_scope.get


def step_call(step: Any, *args: Any, **kwargs: Any) -> Any:
    """``Step.__call__``: a step called from workflow code, an awaitable (async workflows)
    or its value. It is the method itself, not a call of one, and the replay fast path is
    written out in it: a replayed step costs one Python frame fewer, and W8 replays 10,000."""
    act = _current_activation()
    if act is None or _current_step_scope() is not None:  # the hot path skips the message
        act = context.require_activation(f"step {step.definition.name!r}")
    defn: Definition = step.definition
    # What ``take`` does for a recorded success when ``check`` has nothing to raise (its
    # conditions tested inline: a call costs more than the checks). Anything else takes the
    # general path, ``Activation.call_step``.
    cursor = act.cursor
    pos = cursor.position
    if (
        pos < cursor.size
        and act.broken is None
        and act.suspending is None
        and not (act.timed_out or act.draining or act.direct)
    ):
        name = cursor.names[pos]
        if cursor.oks[pos] and name == defn.name and cursor.kinds[pos] == "step":
            cursor.position = pos + 1
            found = act._decoders.get(name)
            dec = found[1] if found is not None and found[0] is defn else act._result_decoder(defn)
            data = cursor.results[pos]
            value = dec.decode(data[1:]) if data[:1] == _JSON else serializer.decode_with(dec, data)
            return Ready(value, None) if act.defn.is_async else value
    return act.call_step(defn, args, kwargs)


async def load(
    rt: Runtime, row: InstanceRow, *, fresh: bool = False
) -> tuple[Activation, tuple[Any, ...], dict[str, Any]] | str:
    """Load ``row`` for a run: its activation and arguments, or why it must be parked.

    ``fresh``: this process just created the row, so its journal is known to be empty.
    """
    kind = Kind.WORKFLOW if row.actor_id is None else Kind.METHOD
    defn = rt.registry.find(kind, row.name)
    if defn is None:
        return f"no {kind} named {row.name!r} is registered in this process; deploy it and resume"
    session = None
    if row.actor_id is not None:
        loaded = await _actor_session(rt, row.actor_id, defn)
        if isinstance(loaded, str):
            return loaded
        session = loaded
    replay = None if fresh else await rt.store.load_replay(row.id)
    try:
        cursor = Cursor() if replay is None else Cursor(replay)
    except JournalGap as exc:
        return f"broken invariant: {exc}"
    try:
        args, kwargs = decode_input(rt, defn, row.run_input or row.input)
    except Exception as exc:  # noqa: BLE001 - any decode failure parks with its reason
        return f"cannot decode the input for the current code of {row.name!r}: {exc}"
    act = Activation(rt, row, defn, cursor, [] if replay is None else replay.retries)
    act.actor = session
    return act, args, kwargs


async def _actor_session(rt: Runtime, actor_id: str, method: Definition) -> ActorSession | str:
    """The actor an invocation of ``method`` runs on, or why it cannot run."""
    assert method.actor is not None
    spec = rt.registry.find(Kind.ACTOR, method.actor)
    if spec is None:
        return f"no actor named {method.actor!r} is registered in this process; deploy it and resume"
    row = rt.actors.known(actor_id) or await rt.store.get_actor(actor_id)
    if row is None:
        return f"actor {actor_id!r} was deleted"
    resident = rt.actors.take(actor_id, row.revision)
    try:
        session = ActorSession(spec, row, resident)
    except Exception as exc:  # noqa: BLE001 - any restore failure parks with its reason
        return f"cannot restore the state of actor {actor_id!r}: {type(exc).__name__}: {exc}"
    if resident is None:
        rt.actors.stats["actor_activations"] += 1
    return session
