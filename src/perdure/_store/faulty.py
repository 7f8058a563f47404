"""A Store that injects faults into another: ``PERDURE_STORE_FAULTS``.

``default`` turns on each kind at 1%; ``timeout=0.02,ambiguous=0.05`` names
kinds and rates. Faults are drawn from an RNG seeded by ``PERDURE_SEED`` and all
surface as ``StoreUnavailable``, so every caller must treat a failed commit as
"maybe written" and resubmit the same batch:

- ``timeout``: nothing written, then the error;
- ``ambiguous``: the batch is committed, then the error (the acknowledgement is lost);
- ``disconnect``: the connection drops mid-call: written or not, at random;
- ``busy``: SQLite busy / PostgreSQL serialization failure, nothing written.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from perdure._model.errors import InvalidArgument, StoreUnavailable
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
KINDS = ("timeout", "ambiguous", "disconnect", "busy")


def parse_faults(spec: str) -> dict[str, float]:
    if spec.strip() == "default":
        return dict.fromkeys(KINDS, 0.01)
    rates: dict[str, float] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        kind, _, raw = item.partition("=")
        if kind not in KINDS:
            raise InvalidArgument(
                f"unknown store fault {kind!r} in PERDURE_STORE_FAULTS; known: {', '.join(KINDS)}"
            )
        try:
            rate = float(raw)
        except ValueError:
            raise InvalidArgument(f"store fault {item!r}: rate {raw!r} is not a number") from None
        if not 0.0 <= rate <= 1.0:
            raise InvalidArgument(f"store fault {item!r}: rate must be in [0, 1]")
        rates[kind] = rate
    return rates


class FaultyStore:
    """Wraps a ``Store``; every call may fail as configured."""

    def __init__(self, inner: Store, rates: dict[str, float], seed: int | None = None) -> None:
        self.inner = inner
        self.url = inner.url
        self.rates = rates
        self._rng = random.Random(seed)
        self.injected: dict[str, int] = dict.fromkeys(KINDS, 0)

    def _draw(self) -> str | None:
        for kind in KINDS:
            rate = self.rates.get(kind, 0.0)
            if rate and self._rng.random() < rate:
                self.injected[kind] += 1
                return kind
        return None

    async def _call(self, fn: Callable[[], Awaitable[T]], writes: bool) -> T:
        kind = self._draw()
        if kind is None:
            return await fn()
        if kind == "ambiguous" or (kind == "disconnect" and writes and self._rng.random() < 0.5):
            await fn()
            raise StoreUnavailable(f"injected fault: {kind} after the call was applied")
        raise StoreUnavailable(f"injected fault: {kind}")

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def commit(self, batch: Sequence[Op]) -> list[Outcome]:
        return await self._call(lambda: self.inner.commit(batch), writes=True)

    async def get_instance(self, instance_id: str) -> InstanceRow | None:
        return await self._call(lambda: self.inner.get_instance(instance_id), writes=False)

    async def list_instances(
        self, *, status: Status | None, name: str | None, limit: int, cursor: str | None
    ) -> Page:
        return await self._call(
            lambda: self.inner.list_instances(status=status, name=name, limit=limit, cursor=cursor),
            writes=False,
        )

    async def count_instances(self) -> dict[tuple[Status, str], int]:
        return await self._call(self.inner.count_instances, writes=False)

    async def load_journal(self, instance_id: str) -> list[JournalEntry]:
        return await self._call(lambda: self.inner.load_journal(instance_id), writes=False)

    async def load_replay(self, instance_id: str) -> Replay:
        return await self._call(lambda: self.inner.load_replay(instance_id), writes=False)

    async def list_executors(self) -> list[ExecutorRow]:
        return await self._call(self.inner.list_executors, writes=False)

    async def schema_version(self) -> int:
        return await self.inner.schema_version()

    async def next_message(
        self, instance_id: str, topic: str, *, mailbox: bool = False
    ) -> tuple[int, bytes] | None:
        return await self._call(
            lambda: self.inner.next_message(instance_id, topic, mailbox=mailbox), writes=False
        )

    async def get_event(self, instance_id: str, key: str) -> bytes | None:
        return await self._call(lambda: self.inner.get_event(instance_id, key), writes=False)

    async def load_runs(self, instance_id: str) -> list[RunRow]:
        return await self._call(lambda: self.inner.load_runs(instance_id), writes=False)

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None:
        return await self._call(lambda: self.inner.get_schedule(schedule_id), writes=False)

    async def list_schedules(self) -> list[ScheduleRow]:
        return await self._call(lambda: self.inner.list_schedules(), writes=False)

    async def due_schedules(self, now: float, limit: int) -> list[ScheduleRow]:
        return await self._call(lambda: self.inner.due_schedules(now, limit), writes=False)

    async def next_wake_at(self) -> float | None:
        return await self._call(lambda: self.inner.next_wake_at(), writes=False)

    async def get_instances(self, instance_ids: Sequence[str]) -> list[InstanceRow]:
        return await self._call(lambda: self.inner.get_instances(instance_ids), writes=False)

    async def get_actor(self, actor_id: str) -> ActorRow | None:
        return await self._call(lambda: self.inner.get_actor(actor_id), writes=False)

    async def get_actors(self, actor_ids: Sequence[str]) -> list[ActorRow]:
        return await self._call(lambda: self.inner.get_actors(actor_ids), writes=False)

    async def list_actors(
        self,
        *,
        type: str | None,  # noqa: A002 - mirrors Store
        prefix: str | None,
        busy: bool | None,
        limit: int,
        cursor: str | None,
    ) -> ActorRows:
        return await self._call(
            lambda: self.inner.list_actors(type=type, prefix=prefix, busy=busy, limit=limit, cursor=cursor),
            writes=False,
        )

    async def actor_oplog(self, actor_id: str, *, limit: int, cursor: str | None) -> OplogRows:
        return await self._call(
            lambda: self.inner.actor_oplog(actor_id, limit=limit, cursor=cursor), writes=False
        )
