"""Actors in memory: the object an invocation runs on, and the ones kept resident.

An invocation runs on its actor's object: the resident one if this executor holds
the current revision, else one restored from the stored snapshot (upgraded if an
older version of the class wrote it), else a new one made with the key. While an
invocation runs, its object is out of the resident set; it goes back only after
the invocation's end and new snapshot are committed, so a resident object always
equals the stored state. A failed or interrupted invocation drops its object.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from perdure._codec import state as state_codec
from perdure._model.definitions import Definition
from perdure._model.records import ActorRow
from perdure._store.protocol import Store


@dataclass(slots=True)
class _Resident:
    obj: Any
    revision: int
    used_at: float


class ActorHost:
    """The actor objects this executor keeps in memory: at most ``max_resident``, none
    idle longer than ``idle_after`` seconds (least recently used go first)."""

    def __init__(self, max_resident: int, idle_after: float) -> None:
        self.max_resident = max_resident
        self.idle_after = idle_after
        self._resident: OrderedDict[str, _Resident] = OrderedDict()
        self._known: dict[str, ActorRow] = {}
        self.direct: set[str] = set()
        """Actors a direct call runs on now (see ``direct.py``): another call on them takes the usual path."""
        self.usual: set[str] = set()
        """Methods seen using a durable operation: their calls take the usual path at once."""
        self.stats = {"actor_activations": 0, "actor_evictions": 0, "actor_direct_calls": 0}

    @property
    def resident(self) -> int:
        return len(self._resident)

    def note(self, row: ActorRow) -> None:
        """``row`` as the commit that gave an invocation its turn saw it: ``known`` answers
        with it once, instead of a read."""
        self._known[row.id] = row

    def known(self, actor_id: str) -> ActorRow | None:
        return self._known.pop(actor_id, None)

    def take(self, actor_id: str, revision: int) -> _Resident | None:
        """The resident object of ``actor_id`` at ``revision``, removed from the set."""
        found = self._resident.pop(actor_id, None)
        return found if found is not None and found.revision == revision else None

    def take_any(self, actor_id: str) -> _Resident | None:
        """The resident object of ``actor_id`` at whatever revision it is, removed from the set."""
        return self._resident.pop(actor_id, None)

    def keep(self, actor_id: str, obj: Any, revision: int, now: float) -> None:
        self._resident[actor_id] = _Resident(obj, revision, now)
        while len(self._resident) > self.max_resident:
            self._resident.popitem(last=False)
            self.stats["actor_evictions"] += 1

    def sweep(self, now: float) -> None:
        """Evict the actors idle for longer than ``idle_after``."""
        horizon = now - self.idle_after
        while self._resident:
            actor_id, oldest = next(iter(self._resident.items()))
            if oldest.used_at > horizon:
                break
            del self._resident[actor_id]
            self.stats["actor_evictions"] += 1


class ActorReads:
    """Actor rows asked for in one pass of the event loop, read in one query: a burst of
    calls to actors that are not resident costs one read (and one hop to a reader thread),
    not one each."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._asked: dict[str, list[asyncio.Future[ActorRow | None]]] = {}
        self._reading: set[asyncio.Task[None]] = set()

    def get(self, actor_id: str) -> asyncio.Future[ActorRow | None]:
        """The row of ``actor_id`` (``None``: no such actor), read with the others asked for now."""
        loop = asyncio.get_running_loop()
        if not self._asked:
            loop.call_soon(self._read)  # after the callbacks of this pass: they may ask too
        fut: asyncio.Future[ActorRow | None] = loop.create_future()
        self._asked.setdefault(actor_id, []).append(fut)
        return fut

    def _read(self) -> None:
        asked, self._asked = self._asked, {}
        task = asyncio.get_running_loop().create_task(self._answer(asked))
        self._reading.add(task)
        task.add_done_callback(self._reading.discard)

    async def _answer(self, asked: dict[str, list[asyncio.Future[ActorRow | None]]]) -> None:
        try:
            rows = {row.id: row for row in await self._store.get_actors(list(asked))}
        except Exception as exc:  # noqa: BLE001 - handed to every caller that asked
            for futs in asked.values():
                for fut in futs:
                    if not fut.done():
                        fut.set_exception(exc)
            return
        for actor_id, futs in asked.items():
            for fut in futs:
                if not fut.done():
                    fut.set_result(rows.get(actor_id))


class ActorSession:
    """The actor an invocation runs on: its object, and the state it started from."""

    __slots__ = ("actor_id", "cls", "key", "obj", "revision", "state", "version")

    def __init__(self, spec: Definition, row: ActorRow, resident: _Resident | None) -> None:
        self.actor_id = row.id
        self.cls: type[Any] = spec.fn  # type: ignore[assignment]  # an actor's fn is its class
        self.key = row.key
        self.version = spec.version
        self.revision = row.revision
        self.state = row.state
        self.obj: Any = None
        if resident is not None:
            self.obj = resident.obj
        elif row.state is not None:
            self.obj = restore(spec, row)

    def instance(self) -> Any:
        """The object, made with the key on the actor's first invocation (inside it, so
        ``__init__`` may use durable operations)."""
        if self.obj is None:
            self.obj = self.cls(self.key)
        return self.obj

    def snapshot(self) -> bytes | None:
        """The state to save after the invocation: ``None`` if unchanged."""
        data = state_codec.encode(self.instance(), f"actor {self.actor_id!r}")
        return None if data == self.state else data


def restore(spec: Definition, row: ActorRow) -> Any:
    """The object ``row``'s snapshot describes, upgraded to ``spec``'s version."""
    assert row.state is not None
    cls: type[Any] = spec.fn  # type: ignore[assignment]
    attrs = state_codec.decode_raw(row.state)
    if row.state_version > spec.version:
        raise ValueError(
            f"the state of actor {row.id!r} was written by version {row.state_version} of "
            f"{spec.name!r}, newer than the version {spec.version} deployed here"
        )
    if row.state_version < spec.version:
        upgrade = getattr(cls, "upgrade", None)
        if upgrade is not None:
            attrs = upgrade(attrs, row.state_version)
            if not isinstance(attrs, dict):
                raise TypeError(f"{spec.name}.upgrade() must return a dict of attributes, got {attrs!r}")
    return state_codec.restore(cls, attrs)
