"""The Engine's schedule methods: create, read, pause, resume, trigger and delete.

A base class of ``Engine``; its methods use the parts of the engine named by
``EngineCore``. When ticks start their workflows is decided in
``_runtime/schedules.py`` and done by the executor.
"""

from __future__ import annotations

import builtins
import uuid
from typing import Any

from perdure._api.core import EngineCore
from perdure._api.decorators import Workflow
from perdure._api.handles import ScheduleInfo, WorkflowHandle
from perdure._api.ops import decode_arguments, encode_arguments
from perdure._model.definitions import Kind, check_name
from perdure._model.errors import Conflict, InvalidArgument, NotFound
from perdure._model.records import CreateSchedule, DeleteSchedule, PauseSchedule, ScheduleRow
from perdure._runtime import schedules


async def _schedule(core: EngineCore, schedule_id: str) -> ScheduleRow:
    core._ready()
    check_name("schedule id", schedule_id)
    row = await core._store.get_schedule(schedule_id)
    if row is None:
        raise NotFound(f"no schedule with id {schedule_id!r}")
    return row


class ScheduleMethods:
    """Schedules: ``Engine`` inherits these; each one works on the engine's store."""

    async def create_schedule(
        self: EngineCore,
        schedule_id: str,
        workflow: Workflow[Any, Any] | str,
        /,
        *args: Any,
        cron: str | None = None,
        every: float | None = None,
        timezone: str = "UTC",
        overlap: str = "skip",
        catchup: str = "latest",
        **kwargs: Any,
    ) -> ScheduleInfo:
        """Start ``workflow(*args, **kwargs)`` on every tick of ``cron`` (in ``timezone``) or
        ``every`` seconds; each tick exactly once, as workflow ``<schedule_id>@<tick time>``.

        ``overlap``: skip | buffer_one | allow_all, for a tick due while the previous run
        goes. ``catchup``: latest | all | none, for ticks missed while no executor ran.
        Creating an existing schedule again with the same definition returns it;
        another definition is a ``Conflict``.
        """
        writer = self._ready()
        check_name("schedule id", schedule_id)
        if len(schedule_id) > 150:
            raise InvalidArgument(
                f"schedule id is {len(schedule_id)} characters long; at most 150 are allowed"
            )
        defn = self._definition(workflow)
        schedules.validate(cron, every, timezone, overlap, catchup)
        now = self.clock.now()
        row = ScheduleRow(
            id=schedule_id, workflow=defn.name, input=encode_arguments(defn, args, kwargs), cron=cron,
            every=None if every is None else float(every), timezone=timezone, overlap=overlap,
            catchup=catchup, paused=False, next_at=schedules.next_tick(cron, every, timezone, now),
            buffered_at=None, last_instance=None, created_at=now, updated_at=now,
        )  # fmt: skip
        if not (await writer.submit((CreateSchedule(row),)))[0]:
            found = await self._store.get_schedule(schedule_id)
            if found is None:
                raise NotFound(f"schedule {schedule_id!r} vanished while being created; create it again")
            same = ("workflow", "input", "cron", "every", "timezone", "overlap", "catchup")
            if any(getattr(found, f) != getattr(row, f) for f in same):
                raise Conflict(
                    f"schedule {schedule_id!r} already exists with another definition; delete it first"
                )
            row = found
        if self._executor is not None:
            self._executor.nudge()
        return ScheduleInfo.of(row)

    async def get_schedule(self: EngineCore, schedule_id: str) -> ScheduleInfo:
        return ScheduleInfo.of(await _schedule(self, schedule_id))

    async def list_schedules(self: EngineCore) -> builtins.list[ScheduleInfo]:
        self._ready()
        return [ScheduleInfo.of(r) for r in await self._store.list_schedules()]

    async def pause_schedule(self: EngineCore, schedule_id: str) -> None:
        """Stop starting ticks until ``resume_schedule``; ticks in between are skipped."""
        await _schedule(self, schedule_id)
        op = PauseSchedule(schedule_id=schedule_id, paused=True, next_at=None, now=self.clock.now())
        await self._ready().submit((op,))

    async def resume_schedule(self: EngineCore, schedule_id: str) -> None:
        row = await _schedule(self, schedule_id)
        now = self.clock.now()
        nxt = schedules.next_tick(row.cron, row.every, row.timezone, now)
        await self._ready().submit(
            (PauseSchedule(schedule_id=schedule_id, paused=False, next_at=nxt, now=now),)
        )
        if self._executor is not None:
            self._executor.nudge()

    async def trigger_schedule(self: EngineCore, schedule_id: str) -> WorkflowHandle[Any]:
        """Start the schedule's workflow now, besides its ticks."""
        row = await _schedule(self, schedule_id)
        defn = self.registry.get(Kind.WORKFLOW, row.workflow)
        args, kwargs = decode_arguments(defn, row.input)
        return await self.start(defn.name, *args, id=f"{schedule_id}@now-{uuid.uuid4().hex[:12]}", **kwargs)

    async def delete_schedule(self: EngineCore, schedule_id: str) -> None:
        """Delete the schedule; workflows its ticks started are left alone."""
        await _schedule(self, schedule_id)  # NotFound; the delete itself may be retried harmlessly
        await self._ready().submit((DeleteSchedule(schedule_id),))
