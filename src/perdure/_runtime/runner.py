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
import contextvars
import enum
import inspect
import logging
from collections.abc import Callable, Coroutine, Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from perdure._codec import serializer
from perdure._journal.cursor import Cursor, JournalGap
from perdure._journal.writer import Writer
from perdure._model import crashpoints
from perdure._model.definitions import Definition, Kind, Registry
from perdure._model.errors import (
    NonDeterminismError,
    PerdureError,
    StaleClaim,
    StepFailed,
    StepTimedOut,
    StoreError,
    Suspend,
    WorkflowCancelled,
)
from perdure._model.records import (
    Append,
    AppendOutcome,
    InstanceRow,
    InstanceUpdate,
    JournalEntry,
    RetryState,
    Status,
)
from perdure._runtime import context
from perdure._runtime.clock import Clock
from perdure._runtime.retry import backoff_delay, should_retry
from perdure._store.protocol import Store

T = TypeVar("T")
log = logging.getLogger("perdure.runner")


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
    types: dict[int, tuple[dict[str, Any], Any]] = field(default_factory=dict)

    def hints(self, defn: Definition) -> tuple[dict[str, Any], Any]:
        """Parameter types and return type of ``defn``, resolved once."""
        found = self.types.get(id(defn))
        if found is None:
            hints = defn.hints()
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


class _Ready:
    """An already-known step result, awaitable without a task or a loop round trip."""

    __slots__ = ("_error", "_value")

    def __init__(self, value: Any, error: BaseException | None) -> None:
        self._value = value
        self._error = error

    def __await__(self) -> Generator[Any, None, Any]:
        if self._error is not None:
            raise self._error
        return self._value
        yield  # type: ignore[unreachable]  # makes this a generator; never reached


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
        self.id = row.id
        self.token = row.token
        self.defn = defn
        self.cursor = cursor
        self.retries = {r.position: r for r in retries}
        self.loop = asyncio.get_running_loop()
        self.cancel_requested = row.cancel_requested
        self.broken: BaseException | None = None
        """Set when replay went wrong or the claim was lost: every later operation re-raises it."""
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.task: asyncio.Task[Any] | None = None

    # --- helpers for operations ----------------------------------------------

    def check(self) -> None:
        if self.broken is not None:
            raise self.broken
        if self.cancel_requested and self.defn.is_async is False:
            raise WorkflowCancelled(self.id)

    def take(self, kind: str, name: str) -> tuple[int, JournalEntry | None]:
        self.check()
        try:
            return self.cursor.next(kind, name)
        except NonDeterminismError as exc:
            self.broken = exc
            raise

    def blocking(self, coro: Coroutine[Any, Any, T]) -> T:
        """From a ``def`` workflow's thread: run ``coro`` on the loop and wait for it."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    async def append(self, append: Append) -> AppendOutcome:
        try:
            outcome = (await self.rt.writer.submit((append,)))[0]
        except StoreError as exc:
            # The database failed, not the workflow: abort this activation (it is driven
            # again later) even if user code catches the error.
            self.broken = exc
            raise
        assert isinstance(outcome, AppendOutcome)
        if not outcome.ok:
            self.broken = StaleClaim(f"instance {self.id!r} was claimed by another executor")
            raise self.broken
        if outcome.cancel_requested:
            self.request_cancel()
        return outcome

    def append_soon(self, entry: JournalEntry) -> None:
        """Record ``entry`` without waiting; later appends of this instance commit after it."""
        op = Append(instance_id=self.id, token=self.token, entries=(entry,))

        def submit() -> None:
            fut = self.rt.writer.submit((op,))
            fut.add_done_callback(self._check_soon)

        if self.defn.is_async:
            submit()
        else:
            self.loop.call_soon_threadsafe(submit)

    def _check_soon(self, fut: asyncio.Future[Any]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            self.broken = exc
        elif not fut.result()[0].ok:
            self.broken = StaleClaim(f"instance {self.id!r} was claimed by another executor")

    def request_cancel(self) -> None:
        if self.cancel_requested:
            return
        self.cancel_requested = True
        if self.task is not None and self.defn.is_async:
            self.task.cancel()

    async def wait_until(self, when: float) -> None:
        """Wait for ``when``: in memory if it is near, else unload the instance until then."""
        if when - self.rt.clock.now() > self.rt.unload_after:
            raise Suspend(when)
        await self.rt.clock.sleep_until(when)

    # --- steps -----------------------------------------------------------------

    def call_step(self, step: Definition, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """A step called from workflow code: an awaitable (async workflows) or its value."""
        pos, entry = self.take("step", step.name)
        if entry is not None:
            if entry.ok:
                value, error = serializer.decode(entry.result, self.rt.hints(step)[1]), None
            else:
                value, error = None, _failure(entry)
            if self.defn.is_async:
                return _Ready(value, error)
            if error is not None:
                raise error
            return value
        coro = self._run_step(pos, step, args, kwargs)
        return coro if self.defn.is_async else self.blocking(coro)

    async def _run_step(
        self, pos: int, step: Definition, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        self._inflight += 1
        self._idle.clear()
        try:
            return await self._attempts(pos, step, args, kwargs)
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def _attempts(
        self, pos: int, step: Definition, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        clock = self.rt.clock
        state = self.retries.get(pos)
        attempt = 0
        if state is not None:
            attempt = state.attempts
            await self.wait_until(state.next_at)
        try:
            step_input: bytes | None = serializer.encode({"args": args, "kwargs": kwargs})
        except (TypeError, OverflowError):
            step_input = None  # recorded for people to read; replay does not need it
        key = f"{self.id}:{pos}"
        while True:
            attempt += 1
            started = clock.now()
            try:
                value = await self._invoke(step, key, args, kwargs)
                crashpoints.hit("step.after_effect")
                result = serializer.encode(value)
            except (Exception, asyncio.CancelledError) as exc:
                if isinstance(exc, asyncio.CancelledError):
                    raise
                ended = clock.now()
                error = serializer.encode_error(exc)
                if should_retry(step.retry, attempt, exc):
                    next_at = ended + backoff_delay(step.retry, attempt)
                    state = RetryState(position=pos, attempts=attempt, last_error=error, next_at=next_at)
                    await self.append(Append(instance_id=self.id, token=self.token, retries=(state,)))
                    await self.wait_until(next_at)
                    continue
                entry = JournalEntry(
                    position=pos,
                    kind="step",
                    name=step.name,
                    ok=False,
                    result=error,
                    input=step_input,
                    attempts=attempt,
                    started_at=started,
                    ended_at=ended,
                )
                await self.append(Append(instance_id=self.id, token=self.token, entries=(entry,)))
                raise _failure(entry) from None
            entry = JournalEntry(
                position=pos,
                kind="step",
                name=step.name,
                ok=True,
                result=result,
                input=step_input,
                attempts=attempt,
                started_at=started,
                ended_at=clock.now(),
            )
            await self.append(Append(instance_id=self.id, token=self.token, entries=(entry,)))
            # Hand back exactly what replay will hand back.
            return serializer.decode(result, self.rt.hints(step)[1])

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
        call = self.loop.run_in_executor(self.rt.step_threads, _in_scope, key, step.fn, args, kwargs)
        if step.timeout is None:
            return await call
        try:
            return await asyncio.wait_for(call, step.timeout)
        except TimeoutError:
            # The thread cannot be stopped; its late result is dropped.
            raise StepTimedOut(f"step {step.name!r} ran longer than {step.timeout}s") from None

    # --- deterministic helpers -------------------------------------------------

    def record(self, kind: str, make: Callable[[], T], type_: Any) -> T:
        """``now``/``random``/``uuid4``: the recorded value on replay, a fresh recorded one otherwise."""
        pos, entry = self.take(kind, kind)
        if entry is not None:
            value: T = serializer.decode(entry.result, type_)
            return value
        value = make()
        now = self.rt.clock.now()
        self.append_soon(
            JournalEntry(
                position=pos,
                kind=kind,
                name=kind,
                ok=True,
                result=serializer.encode(value),
                started_at=now,
                ended_at=now,
            )
        )
        return value

    # --- the run ---------------------------------------------------------------

    async def drive(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[End, float | None]:
        """Run the workflow code to its end, a suspension, or a failure, and record that."""
        try:
            value = await self._run_code(args, kwargs)
            if self.broken is not None:
                raise self.broken
            self.cursor.finish()
        except Suspend as s:
            return await self._finish(Status.WAITING, wake_at=s.wake_at), s.wake_at
        except NonDeterminismError as exc:
            return await self._park(f"NonDeterminismError: {exc}"), None
        except StaleClaim:
            return End.STALE, None
        except asyncio.CancelledError:
            if not self.cancel_requested:
                raise
            return await self._finish(Status.CANCELLED), None
        except WorkflowCancelled:
            return await self._finish(Status.CANCELLED), None
        except PerdureError as exc:
            if exc is self.broken:  # a store failure seen by an operation, not the user's error
                raise
            return await self._finish(Status.FAILED, error=serializer.encode_error(exc)), None
        except Exception as exc:  # noqa: BLE001 - the user's error is the workflow's outcome
            return await self._finish(Status.FAILED, error=serializer.encode_error(exc)), None
        try:
            output = serializer.encode(value)
        except (TypeError, OverflowError) as exc:
            err = TypeError(f"workflow {self.defn.name!r} returned a value perdure cannot serialize: {exc}")
            return await self._finish(Status.FAILED, error=serializer.encode_error(err)), None
        return await self._finish(Status.COMPLETED, output=output), None

    async def _run_code(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        fn = self.defn.fn
        if self.defn.is_async:
            ctx = contextvars.copy_context()
            ctx.run(context.activation.set, self)
            self.task = self.loop.create_task(fn(*args, **kwargs), context=ctx)
            return await self.task
        return await self.loop.run_in_executor(
            self.rt.workflow_threads, _as_activation, self, fn, args, kwargs
        )

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
    ) -> End:
        # Steps the code started but never awaited still commit under this claim: let
        # them land before the end is recorded, so nothing follows it in the journal.
        await self._idle.wait()
        update = InstanceUpdate(
            status=status,
            updated_at=self.rt.clock.now(),
            output=output,
            error=error,
            wake_at=wake_at,
            owner=None,
            park_reason=park_reason,
            clear_retries=status in (Status.COMPLETED, Status.FAILED, Status.CANCELLED),
        )
        outcome = (
            await self.rt.writer.submit((Append(instance_id=self.id, token=self.token, update=update),))
        )[0]
        assert isinstance(outcome, AppendOutcome)
        return End(status.value) if outcome.ok else End.STALE


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


async def load(
    rt: Runtime, row: InstanceRow, *, fresh: bool = False
) -> tuple[Activation, tuple[Any, ...], dict[str, Any]] | str:
    """Load ``row`` for a run: its activation and arguments, or why it must be parked.

    ``fresh``: this process just created the row, so its journal is known to be empty.
    """
    defn = rt.registry.find(Kind.WORKFLOW, row.name)
    if defn is None:
        return f"no workflow named {row.name!r} is registered in this process; deploy it and resume"
    journal = [] if fresh else await rt.store.load_journal(row.id)
    retries = [] if fresh else await rt.store.load_retries(row.id)
    try:
        cursor = Cursor(journal)
    except JournalGap as exc:
        return f"broken invariant: {exc}"
    try:
        args, kwargs = decode_input(rt, defn, row.input)
    except Exception as exc:  # noqa: BLE001 - any decode failure parks with its reason
        return f"cannot decode the input for the current code of {row.name!r}: {exc}"
    return Activation(rt, row, defn, cursor, retries), args, kwargs
