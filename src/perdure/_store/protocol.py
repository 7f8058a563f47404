"""The Store protocol: everything that changes durable state goes through it.

One write entry, ``commit``: a batch of operations applied in one transaction,
answered with one outcome per operation (see ``_model/records.py``). The rest
reads. Errors are ``StoreUnavailable`` when a retry may help and
``StoreIntegrityError`` or ``IncompatibleDatabase`` when it cannot; callers
retry only the first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

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


class Store(Protocol):
    url: str
    """Where the data lives, without credentials."""

    async def open(self) -> None:
        """Connect, then create or migrate the schema; refuse foreign or newer databases."""

    async def close(self) -> None:
        """Release connections; idempotent."""

    async def commit(self, batch: Sequence[Op]) -> list[Outcome]:
        """Apply ``batch`` in one transaction; one outcome per operation, in order."""

    async def get_instance(self, instance_id: str) -> InstanceRow | None: ...

    async def list_instances(
        self, *, status: Status | None, name: str | None, limit: int, cursor: str | None
    ) -> Page: ...

    async def count_instances(self) -> dict[tuple[Status, str], int]:
        """How many instances each (status, workflow name) pair has; absent pairs have none."""

    async def load_journal(self, instance_id: str) -> list[JournalEntry]:
        """The instance's journal entries in position order, all of each."""

    async def load_replay(self, instance_id: str) -> Replay:
        """What a run of the instance replays: its journal without what only people read
        (inputs, times), as rows, and its retries."""

    async def list_executors(self) -> list[ExecutorRow]: ...

    async def schema_version(self) -> int: ...

    async def next_message(
        self, instance_id: str, topic: str, *, mailbox: bool = False
    ) -> tuple[int, bytes] | None:
        """The oldest unconsumed message on ``topic`` for the instance: (seq, payload).
        ``mailbox``: ``instance_id`` is an actor's id, and the message one in its mailbox."""

    async def get_event(self, instance_id: str, key: str) -> bytes | None:
        """The latest value the instance published under ``key``."""

    async def load_runs(self, instance_id: str) -> list[RunRow]:
        """The runs an instance finished by continuing as new, oldest first."""

    async def get_schedule(self, schedule_id: str) -> ScheduleRow | None: ...

    async def list_schedules(self) -> list[ScheduleRow]: ...

    async def due_schedules(self, now: float, limit: int) -> list[ScheduleRow]: ...

    async def next_wake_at(self) -> float | None: ...

    async def get_instances(self, instance_ids: Sequence[str]) -> list[InstanceRow]:
        """The instances of those ids that exist, in any order."""

    async def get_actor(self, actor_id: str) -> ActorRow | None: ...

    async def get_actors(self, actor_ids: Sequence[str]) -> list[ActorRow]:
        """The actors of those ids that exist, in any order; for running calls, so without the
        count of messages in their mailboxes (``pending`` is 0: read ``get_actor`` for it)."""

    async def list_actors(
        self,
        *,
        type: str | None,  # noqa: A002 - the actor type, as the API names it
        prefix: str | None,
        busy: bool | None,
        limit: int,
        cursor: str | None,
    ) -> ActorRows:
        """Actors by id; ``prefix`` filters keys, ``busy`` whether an invocation has its turn."""

    async def actor_oplog(self, actor_id: str, *, limit: int, cursor: str | None) -> OplogRows:
        """The actor's invocations, oldest first."""
