"""Retry transient store errors, in one place, for every store call.

Only ``StoreUnavailable`` is retried (with exponential backoff and full jitter,
for up to ``deadline`` seconds after the first failure); permanent errors pass
through at once. Every operation is safe to submit twice (see
``_model/records.py``), so a commit whose acknowledgement was lost is simply
sent again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from perdure._model.errors import StoreUnavailable
from perdure._model.records import (
    ActorRow,
    ActorRows,
    ExecutorRow,
    InstanceRow,
    JournalEntry,
    Op,
    OplogRows,
    Outcome,
    Page,
    Replay,
    RunRow,
    ScheduleRow,
    Status,
)
from perdure._store.protocol import Store

T = TypeVar("T")
log = logging.getLogger("perdure.store")


class RetryingStore:
    def __init__(
        self, inner: Store, *, deadline: float = 30.0, base: float = 0.005, cap: float = 1.0
    ) -> None:
        self.inner = inner
        self.url = inner.url
        self.deadline = deadline
        self._base = base
        self._cap = cap
        self.retries = 0

    async def _retry(self, fn: Callable[[], Awaitable[T]]) -> T:
        give_up = 0.0  # ``deadline`` seconds after the first failure (the hot path sets up nothing)
        attempt = 0
        while True:
            try:
                return await fn()
            except StoreUnavailable as exc:
                loop = asyncio.get_running_loop()
                if not attempt:
                    give_up = loop.time() + self.deadline
                attempt += 1
                delay = random.uniform(0, min(self._cap, self._base * 2**attempt))
                if loop.time() + delay > give_up:
                    raise
                self.retries += 1
                log.debug("store unavailable (%s); retry %d in %.3fs", exc, attempt, delay)
                # Real time on purpose: the database recovers in wall time, even under a virtual clock.
                await asyncio.sleep(delay)

    async def open(self) -> None:
        await self._retry(self.inner.open)

    async def close(self) -> None:
        await self.inner.close()

    async def commit(self, batch: Sequence[Op]) -> list[Outcome]:
        return await self._retry(lambda: self.inner.commit(batch))

    async def get_instance(self, instance_id: str) -> InstanceRow | None:
        return await self._retry(lambda: self.inner.get_instance(instance_id))

    async def list_instances(
        self, *, status: Status | None, name: str | None, limit: int, cursor: str | None
    ) -> Page:
        return await self._retry(
            lambda: self.inner.list_instances(status=status, name=name, limit=limit, cursor=cursor)
        )

    async def count_instances(self) -> dict[tuple[Status, str], int]:
        return await self._retry(self.inner.count_instances)

    async def load_journal(self, instance_id: str) -> list[JournalEntry]:
        return await self._retry(lambda: self.inner.load_journal(instance_id))

    async def load_replay(self, instance_id: str) -> Replay:
        return await self._retry(lambda: self.inner.load_replay(instance_id))

    async def list_executors(self) -> list[ExecutorRow]:
        return await self._retry(self.inner.list_executors)

    async def schema_version(self) -> int:
        return await self._retry(self.inner.schema_version)

    async def next_message(
        self, instance_id: str, topic: str, *, mailbox: bool = False
    ) -> tuple[int, bytes] | None:
        return await self._retry(lambda: self.inner.next_message(instance_id, topic, mailbox=mailbox))

    async def get_event(self, instance_id: str, key: str) -> bytes | None:
        return await self._retry(lambda: self.inner.get_event(instance_id, key))

    async def load_runs(self, instance_id: str) -> list[RunRow]:
        return await self._retry(lambda: self.inner.load_runs(instance_id))

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        return await self._retry(lambda: self.inner.get_schedule(schedule_id))

    async def list_schedules(self) -> list[ScheduleRow]:
        return await self._retry(lambda: self.inner.list_schedules())

    async def due_schedules(self, now: float, limit: int) -> list[ScheduleRow]:
        return await self._retry(lambda: self.inner.due_schedules(now, limit))

    async def next_wake_at(self) -> float | None:
        return await self._retry(lambda: self.inner.next_wake_at())

    async def get_instances(self, instance_ids: Sequence[str]) -> list[InstanceRow]:
        return await self._retry(lambda: self.inner.get_instances(instance_ids))

    async def get_actor(self, actor_id: str) -> ActorRow | None:
        return await self._retry(lambda: self.inner.get_actor(actor_id))

    async def get_actors(self, actor_ids: Sequence[str]) -> list[ActorRow]:
        return await self._retry(lambda: self.inner.get_actors(actor_ids))

    async def list_actors(
        self,
        *,
        type: str | None,  # noqa: A002 - mirrors Store
        prefix: str | None,
        busy: bool | None,
        limit: int,
        cursor: str | None,
    ) -> ActorRows:
        return await self._retry(
            lambda: self.inner.list_actors(type=type, prefix=prefix, busy=busy, limit=limit, cursor=cursor)
        )

    async def actor_oplog(self, actor_id: str, *, limit: int, cursor: str | None) -> OplogRows:
        return await self._retry(lambda: self.inner.actor_oplog(actor_id, limit=limit, cursor=cursor))
