"""Direct actor calls: a client's call on an idle actor, run at once, recorded in one commit.

The usual path makes each call a full instance: one commit puts it in the inbox and
gives it the turn, a claim or a hand-over starts it, another commit records its end
and the actor's new state. For the common case (a client of this process calls an
actor whose inbox is empty, and the method uses no durable operation) one commit
says it all: ``DirectCall`` records the ended call, the new state and the count,
only if no call has the actor's turn and its revision is still the one the method
ran on. Calls stay serialized per actor: a direct call commits only on an idle
actor at an unchanged state, so it is ordered after every call before it.

Whenever that does not hold, nothing is written and the call takes the usual path,
on an object restored from the stored state (the one the direct run mutated is
dropped): another call came first (here or in another executor), the actor is
busy, or the method (or ``__init__``) starts a durable operation. That operation
raises ``LeaveDirect`` before recording anything, so the usual run repeats only the
method's code before it, as a run after a crash would; the method is then known to
be durable here and its later calls take the usual path at once.
"""

from __future__ import annotations

import inspect
from typing import Any

import msgspec

from perdure._codec import serializer
from perdure._codec import state as state_codec
from perdure._journal.cursor import Cursor
from perdure._model import crashpoints
from perdure._model.definitions import Definition, Kind
from perdure._model.records import ActorRow, DirectCall, InstanceRow, Status
from perdure._runtime.actors import ActorSession
from perdure._runtime.runner import Activation, LeaveDirect, Runtime


async def call_direct(rt: Runtime, row: InstanceRow, arguments: dict[str, Any]) -> InstanceRow | None:
    """Run the call ``row`` (an actor invocation, not stored; ``arguments``: its input decoded)
    directly: its ended row as recorded, or ``None`` when it must take the usual path (nothing
    of it was recorded, unless a retried commit found its first attempt landed: the usual path
    finds it)."""
    host = rt.actors
    method = rt.registry.find(Kind.METHOD, row.name)
    actor_id = row.actor_id
    if method is None or method.actor is None or actor_id is None or method.name in host.usual:
        return None
    spec = rt.registry.find(Kind.ACTOR, method.actor)
    if spec is None or actor_id in host.direct:
        return None
    host.direct.add(actor_id)
    try:
        # One coroutine for the whole call (not one calling another): every resumption
        # passes through each coroutine of the chain, and a call is resumed three times.
        found = await _session(rt, spec, actor_id)
        if found is None:
            return None
        session, revision = found
        act = Activation(rt, row, method, Cursor(), [])
        act.actor = session
        act.direct = True
        bound = inspect.BoundArguments(method.signature, arguments)
        args, kwargs = bound.args, bound.kwargs
        try:
            value = await act._run_code(args, kwargs)
        except LeaveDirect:
            rt.actors.usual.add(method.name)
            return None
        except Exception as exc:  # noqa: BLE001 - the method's error is the call's outcome
            return await _record(rt, row, session, revision, error=serializer.encode_error(exc))
        try:
            output, state = serializer.encode(value), session.snapshot()
        except (TypeError, OverflowError):
            return None  # the usual path fails the call, saying what cannot be saved
        return await _record(rt, row, session, revision, output=output, state=state)
    finally:
        host.direct.discard(actor_id)


async def _record(
    rt: Runtime,
    row: InstanceRow,
    session: ActorSession,
    revision: int | None,
    *,
    output: bytes | None = None,
    error: bytes | None = None,
    state: bytes | None = None,
) -> InstanceRow | None:
    """Commit the ended call (``DirectCall``); its row, or ``None`` if the actor moved on."""
    now = rt.clock.now()
    status = Status.COMPLETED if error is None else Status.FAILED
    ended = msgspec.structs.replace(row, status=status, output=output, error=error, updated_at=now,
                                    wake_at=None, owner=None, token=0)  # fmt: skip
    op = DirectCall(row=ended, revision=revision, state=state, state_version=session.version)
    if (await rt.writer.submit((op,)))[0] is not True:
        return None
    crashpoints.hit("actor.after_state_commit")
    rt.actors.stats["actor_direct_calls"] += 1
    if status is Status.COMPLETED and session.obj is not None:
        # Recorded: the object now equals the stored state; keep it for the next call.
        rt.actors.keep(session.actor_id, session.obj, (revision or 0) + (state is not None), now)
    return ended


async def _session(rt: Runtime, spec: Definition, actor_id: str) -> tuple[ActorSession, int | None] | None:
    """The actor to run on and the revision it is at (``None``: not stored yet), or ``None``
    if it is busy or cannot be restored (the usual path parks the call with the reason)."""
    host = rt.actors
    key = actor_id.split("/", 1)[1]
    resident = host.take_any(actor_id)
    if resident is not None:
        # A resident object equals the state stored at its revision: its snapshot now is
        # that state, so an unchanged state is still recognized (and not saved) without a read.
        session = ActorSession(spec, _unread(spec, actor_id, key, resident.revision), resident)
        session.state = state_codec.encode(resident.obj, f"actor {actor_id!r}")
        return session, resident.revision
    row = await rt.actor_reads.get(actor_id)
    if row is not None and row.active is not None:
        return None
    try:
        session = ActorSession(spec, row or _unread(spec, actor_id, key, 0), None)
    except Exception:  # noqa: BLE001 - the usual path parks the call with the reason
        return None
    host.stats["actor_activations"] += 1
    return session, None if row is None else row.revision


def _unread(spec: Definition, actor_id: str, key: str, revision: int) -> ActorRow:
    """The actor's row as far as a direct call needs it: no state read (a new actor, or a
    resident one whose snapshot is taken from its object)."""
    return ActorRow(id=actor_id, type=spec.name, key=key, state=None, state_version=spec.version,
                    revision=revision, active=None, invocations=0, created_at=0.0, updated_at=0.0)  # fmt: skip
