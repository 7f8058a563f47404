"""Handles to workflow instances, and the read-only views they return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from perdure._codec import serializer
from perdure._model.records import ExecutorRow, InstanceRow, JournalEntry, RunRow, ScheduleRow, Status

if TYPE_CHECKING:
    from perdure._api.engine import Engine

R = TypeVar("R")


def _time(t: float | None) -> datetime | None:
    return None if t is None else datetime.fromtimestamp(t, UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorDetails:
    """An exception as recorded."""

    type: str
    """Qualified name of the exception's type."""
    message: str
    traceback: str


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowInfo:
    """A workflow instance as stored."""

    id: str
    name: str
    status: Status
    created_at: datetime
    updated_at: datetime
    wake_at: datetime | None
    """When a waiting instance is due (a retry backoff); None otherwise."""
    recoveries: int
    """Times it was recovered after its executor died mid-run."""
    park_reason: str | None
    error: ErrorDetails | None
    """For failed workflows: what was raised."""
    run: int
    """How many times it continued as new (0: the first run)."""

    @classmethod
    def of(cls, row: InstanceRow) -> WorkflowInfo:
        err = serializer.decode_error(row.error) if row.error else None
        return cls(
            id=row.id,
            name=row.name,
            status=row.status,
            created_at=datetime.fromtimestamp(row.created_at, UTC),
            updated_at=datetime.fromtimestamp(row.updated_at, UTC),
            wake_at=_time(row.wake_at) if row.status is Status.WAITING else None,
            recoveries=row.recoveries,
            run=row.run,
            park_reason=row.park_reason,
            error=ErrorDetails(type=err.type, message=err.message, traceback=err.traceback) if err else None,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryEntry:
    """One journal position: a step (or helper) with its input, outcome and timing."""

    position: int
    kind: str
    name: str
    ok: bool
    result: Any
    """The value recorded (plain JSON form); None if the step failed."""
    error: ErrorDetails | None
    input: Any
    attempts: int
    started_at: datetime
    ended_at: datetime

    @classmethod
    def of(cls, e: JournalEntry) -> HistoryEntry:
        err = serializer.decode_error(e.result) if not e.ok else None
        return cls(
            position=e.position,
            kind=e.kind,
            name=e.name,
            ok=bool(e.ok),
            result=serializer.decode(e.result) if e.ok else None,
            error=ErrorDetails(type=err.type, message=err.message, traceback=err.traceback) if err else None,
            input=serializer.decode(e.input) if e.input is not None else None,
            attempts=e.attempts,
            started_at=datetime.fromtimestamp(e.started_at, UTC),
            ended_at=datetime.fromtimestamp(e.ended_at, UTC),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """A run that ended by continuing as new."""

    run: int
    input: Any
    """Its arguments (plain JSON form)."""
    steps: int
    """Journal entries it recorded."""
    ended_at: datetime

    @classmethod
    def of(cls, r: RunRow) -> RunInfo:
        return cls(run=r.run, input=serializer.decode(r.input), steps=r.steps,
                   ended_at=datetime.fromtimestamp(r.ended_at, UTC))  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleInfo:
    """A schedule: what it starts, when, and what happened last."""

    id: str
    workflow: str
    cron: str | None
    every: float | None
    """Seconds between ticks, for interval schedules."""
    timezone: str
    overlap: str
    catchup: str
    paused: bool
    next_at: datetime
    """The next tick."""
    last_instance: str | None
    """The id of the workflow the last tick started; ticks start ``<schedule id>@<tick time>``."""

    @classmethod
    def of(cls, r: ScheduleRow) -> ScheduleInfo:
        return cls(
            id=r.id, workflow=r.workflow, cron=r.cron, every=r.every, timezone=r.timezone,
            overlap=r.overlap, catchup=r.catchup, paused=r.paused,
            next_at=datetime.fromtimestamp(r.next_at, UTC), last_instance=r.last_instance,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowPage:
    """One page of ``engine.list``; pass ``cursor`` back for the next (None: last page)."""

    items: list[WorkflowInfo]
    cursor: str | None


class WorkflowHandle(Generic[R]):
    """A workflow instance by id. Cheap: holds no state but the id."""

    __slots__ = ("_engine", "id")

    def __init__(self, engine: Engine, workflow_id: str) -> None:
        self.id = workflow_id
        self._engine = engine

    async def result(self, timeout: float | None = None) -> R:
        """Wait for the end: the return value, or ``WorkflowFailed`` / ``WorkflowCancelled``."""
        value: R = await self._engine.result(self.id, timeout=timeout)
        return value

    async def status(self) -> Status:
        return (await self._engine.info(self.id)).status

    async def info(self) -> WorkflowInfo:
        return await self._engine.info(self.id)

    async def history(self) -> list[HistoryEntry]:
        return await self._engine.history(self.id)

    async def query(self, name: str, *args: Any) -> Any:
        """Ask the workflow's query handler ``name``; see ``Engine.query``."""
        return await self._engine.query(self.id, name, *args)

    async def runs(self) -> list[RunInfo]:
        """The runs before the current one, if it continued as new; oldest first."""
        return await self._engine.runs(self.id)

    async def send(self, topic: str, value: Any, *, idempotency_key: str | None = None) -> None:
        """Send ``value`` to this workflow on ``topic``; see ``Engine.send``."""
        await self._engine.send(self.id, topic, value, idempotency_key=idempotency_key)

    async def get_event(self, key: str) -> Any:
        """The value last published under ``key`` by ``perdure.set_event``, or None."""
        return await self._engine.get_event(self.id, key)

    async def wait_event(self, key: str, timeout: float | None = None) -> Any:
        """Wait until ``key`` is published; ``ResultTimeout`` after ``timeout`` seconds."""
        return await self._engine.wait_event(self.id, key, timeout=timeout)

    async def cancel(self) -> Status:
        """Ask it to cancel; returns its status after the request."""
        return await self._engine.cancel(self.id)

    def __repr__(self) -> str:
        return f"<WorkflowHandle {self.id!r}>"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutorInfo:
    """An executor that shares the database: a process running workflows and actors."""

    id: str
    host: str
    pid: int
    lease_expires_at: datetime
    """When its lease runs out unless it beats again (every third of ``lease_ttl``)."""
    alive: bool
    """Its lease holds now (a stopped or dead one is kept, expired, until it is replaced)."""
    shards: int
    """How many of the shards it leases: it claims the ready instances in those."""

    @classmethod
    def of(cls, r: ExecutorRow, now: float) -> ExecutorInfo:
        return cls(
            id=r.id, host=r.host, pid=r.pid, lease_expires_at=datetime.fromtimestamp(r.expires_at, UTC),
            alive=r.expires_at >= now, shards=r.shards,
        )  # fmt: skip
