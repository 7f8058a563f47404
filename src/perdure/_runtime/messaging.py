"""Durable operations between instances: messages, events and child workflows.

Functions of an ``Activation`` (the running instance), called by ``perdure.send``,
``send_actor``, ``recv``, ``set_event``, ``start_child`` and ``ChildHandle.result``. Each takes the
next journal position; what it sends, consumes, publishes or starts is
committed with that position's entry, so replay repeats none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from perdure._codec import serializer
from perdure._model.definitions import Definition
from perdure._model.errors import (
    ActorCallFailed,
    Conflict,
    InvalidState,
    NotFound,
    PerdureError,
    WorkflowCancelled,
    WorkflowFailed,
)
from perdure._model.records import TERMINAL, Append, InstanceRow, JournalEntry, Message, Status
from perdure._runtime.ready import Ready

if TYPE_CHECKING:
    from perdure._runtime.runner import Activation


def _recorded(entry: JournalEntry) -> PerdureError:
    """A perdure error recorded at a position, raised again the same way on replay."""
    info = serializer.decode_error(entry.result)
    kinds: dict[str, type[PerdureError]] = {
        "perdure.NotFound": NotFound,
        "perdure.InvalidState": InvalidState,
    }
    return kinds.get(info.type, PerdureError)(info.message)


def _child_outcome(child_id: str, entry: JournalEntry, type_: Any) -> tuple[Any, PerdureError | None]:
    if entry.ok:
        return serializer.decode(entry.result, type_), None
    info = serializer.decode_error(entry.result)
    if info.type == "perdure.WorkflowCancelled":
        return None, WorkflowCancelled(child_id)
    return None, WorkflowFailed(child_id, info.type, info.message, info.traceback)


def start_child(
    act: Activation, child: Definition, data: bytes, child_id: str | None, parent_close: str
) -> Any:
    """Start ``child`` with input ``data``, created in the same commit as this entry.

    Returns the child's id (awaitable in async workflows). The id defaults to one
    derived from this position, so a replay names the same child.
    """
    pos, entry = act.take("child", child.name)
    if entry is not None:
        if not entry.ok:
            raise _recorded(entry)
        found: str = serializer.decode(entry.result, str)
        return Ready(found, None) if act.defn.is_async else found
    cid = child_id if child_id is not None else f"{act.id}:{pos}"
    coro = _start_child(act, pos, child, data, cid, parent_close)
    return coro if act.defn.is_async else act.blocking(coro)


async def _start_child(
    act: Activation, pos: int, child: Definition, data: bytes, cid: str, parent_close: str
) -> str:
    existing = await act.rt.store.get_instance(cid)
    if existing is not None and (existing.name != child.name or existing.input != data):
        error = Conflict(f"child workflow id {cid!r} already exists with another workflow or arguments")
        await act.append(Append(instance_id=act.id, token=act.token,
                                 entries=(act.make_entry(pos, "child", child.name, error, ok=False),)))  # fmt: skip
        raise error
    now = act.rt.clock.now()
    act.started_children = True
    row = InstanceRow(id=cid, name=child.name, status=Status.PENDING, input=data, created_at=now,
                      updated_at=now, wake_at=now, parent_id=act.id, parent_close=parent_close)  # fmt: skip
    await act.append(Append(instance_id=act.id, token=act.token,
                             entries=(act.make_entry(pos, "child", child.name, cid),), children=(row,)))  # fmt: skip
    act.rt.nudge()
    return cid


def child_result(act: Activation, child_id: str, type_: Any) -> Any:
    """Wait for child ``child_id`` to end: its value, or ``WorkflowFailed``/``WorkflowCancelled``.

    The outcome is recorded here when first seen; until the child ends this
    instance is unloaded, and the child's end wakes it.
    """
    pos, entry = act.take("child_result", child_id)
    if entry is not None:
        value, error = _child_outcome(child_id, entry, type_)
        if act.defn.is_async:
            return Ready(value, error)
        if error is not None:
            raise error
        return value
    coro = _child_result(act, pos, child_id, type_)
    return coro if act.defn.is_async else act.blocking(coro)


async def _child_result(act: Activation, pos: int, child_id: str, type_: Any) -> Any:
    row = await act.rt.store.get_instance(child_id)
    if row is None:
        raise NotFound(f"no child workflow with id {child_id!r}")
    if row.status not in TERMINAL:
        await act.wait_for_message(pos, None, f"__child__:{child_id}")
    now = act.rt.clock.now()
    if row.status is Status.COMPLETED:
        ok, result = True, row.output or serializer.encode(None)
    else:
        ok = False
        result = (
            row.error
            if row.status is Status.FAILED and row.error
            else serializer.encode_error(WorkflowCancelled(child_id))
        )
    entry = JournalEntry(position=pos, kind="child_result", name=child_id, ok=ok, result=result,
                         started_at=now, ended_at=now)  # fmt: skip
    await act.append(Append(instance_id=act.id, token=act.token, entries=(entry,)))
    value, error = _child_outcome(child_id, entry, type_)
    if error is not None:
        raise error
    return value


def call_actor(act: Activation, method: Definition, actor_id: str, data: bytes) -> tuple[str, Any]:
    """Put an invocation of ``method`` in actor ``actor_id``'s inbox, exactly once.

    The invocation is created in the same commit as this position's entry, under an
    id derived from this instance and position: the callee's idempotency key. Returns
    that id and what to wait for it to be committed (an awaitable in async code, None
    in def code, where the call blocks); ``invocation_result`` waits for its outcome.
    """
    pos, entry = act.take("actor_call", method.name)
    if entry is not None:
        found: str = serializer.decode(entry.result, str)
        return found, Ready(found, None) if act.defn.is_async else None
    iid = f"{actor_id}/{act.id}:{pos}"
    coro = _call_actor(act, pos, method, actor_id, iid, data)
    return iid, coro if act.defn.is_async else act.blocking(coro)


async def _call_actor(
    act: Activation, pos: int, method: Definition, actor_id: str, iid: str, data: bytes
) -> str:
    now = act.rt.clock.now()
    row = InstanceRow(id=iid, name=method.name, status=Status.PENDING, input=data, created_at=now,
                      updated_at=now, wake_at=now, parent_id=act.id, parent_close="abandon",
                      actor_id=actor_id)  # fmt: skip
    await act.append(Append(instance_id=act.id, token=act.token,
                             entries=(act.make_entry(pos, "actor_call", method.name, iid),), children=(row,)))  # fmt: skip
    act.rt.nudge()
    return iid


def invocation_result(act: Activation, method: Definition, invocation_id: str, type_: Any) -> Any:
    """Wait for an actor invocation to end: its value, or ``ActorCallFailed``."""
    actor_id = invocation_id.rsplit("/", 1)[0]

    def fail(entry: JournalEntry) -> PerdureError:
        info = serializer.decode_error(entry.result)
        return ActorCallFailed(actor_id, method.method, info.type, info.message, info.traceback)

    pos, entry = act.take("child_result", invocation_id)
    if entry is not None:
        value, error = (serializer.decode(entry.result, type_), None) if entry.ok else (None, fail(entry))
        if act.defn.is_async:
            return Ready(value, error)
        if error is not None:
            raise error
        return value

    async def wait() -> Any:
        try:
            return await _child_result(act, pos, invocation_id, type_)
        except WorkflowFailed as exc:
            raise ActorCallFailed(
                actor_id, method.method, exc.error_type, exc.message, exc.traceback
            ) from None

    return wait() if act.defn.is_async else act.blocking(wait())


def send(act: Activation, target: str, topic: str, value: Any) -> Any:
    """Send ``value`` to workflow ``target`` on ``topic``, exactly once.

    The message is committed with this position's journal entry; a replay sends
    nothing. A target that does not exist or has ended is an error, recorded so
    that replay raises it again. A value that cannot be serialized raises before
    a position is taken, the same way on replay.
    """
    payload = serializer.encode(value)
    pos, entry = act.take("send", topic)
    if entry is not None:
        if not entry.ok:
            raise _recorded(entry)
        return Ready(None, None) if act.defn.is_async else None
    coro = _send(act, pos, target, topic, payload)
    return coro if act.defn.is_async else act.blocking(coro)


async def _send(act: Activation, pos: int, target: str, topic: str, payload: bytes) -> None:
    row = await act.rt.store.get_instance(target)
    error: PerdureError | None = None
    if row is None:
        error = NotFound(f"cannot send to workflow {target!r}: there is no such workflow")
    elif row.status in TERMINAL:
        error = InvalidState(f"cannot send to workflow {target!r}: it is {row.status.value}")
    if error is not None:
        await act.append(Append(instance_id=act.id, token=act.token,
                                 entries=(act.make_entry(pos, "send", topic, error, ok=False),)))  # fmt: skip
        raise error
    message = Message(target=target, topic=topic, payload=payload, at=act.rt.clock.now(),
                      sender_key=f"wf:{act.id}:{pos}")  # fmt: skip
    await act.append(Append(instance_id=act.id, token=act.token,
                             entries=(act.make_entry(pos, "send", topic, target),), sends=(message,)))  # fmt: skip


def send_actor(act: Activation, actor_id: str, topic: str, payload: bytes) -> Any:
    """Put ``payload`` in actor ``actor_id``'s mailbox on ``topic``, exactly once.

    Committed with this position's journal entry, like ``send``; the actor is created
    if it does not exist yet, so there is no error to record.
    """
    pos, entry = act.take("send", topic)
    if entry is not None:
        return Ready(None, None) if act.defn.is_async else None
    coro = _send_actor(act, pos, actor_id, topic, payload)
    return coro if act.defn.is_async else act.blocking(coro)


async def _send_actor(act: Activation, pos: int, actor_id: str, topic: str, payload: bytes) -> None:
    message = Message(target=actor_id, topic=topic, payload=payload, at=act.rt.clock.now(),
                      sender_key=f"wf:{act.id}:{pos}")  # fmt: skip
    await act.append(Append(instance_id=act.id, token=act.token,
                             entries=(act.make_entry(pos, "send", topic, actor_id),), mail=(message,)))  # fmt: skip
    act.rt.nudge()  # the actor's call may wait for it here


def recv(act: Activation, topic: str, timeout: float | None, type_: Any) -> Any:
    """The next message on ``topic``, in send order; ``None`` after ``timeout`` seconds.

    The deadline is recorded first, so a replay waits for the same instant. With
    no message yet, the instance is unloaded until one arrives or the deadline. In an
    actor's call the message comes from the actor's mailbox: the call keeps the actor's
    turn while it waits, so calls queued behind it wait too.
    """
    deadline = None
    if timeout is not None:
        deadline = act.record("deadline", lambda: act.rt.clock.now() + timeout, float)
    pos, entry = act.take("recv", topic)
    if entry is not None:  # None if it timed out, whatever type was asked for
        value = serializer.decode(entry.result, Any if type_ is Any else Optional[type_])  # noqa: UP045
        return Ready(value, None) if act.defn.is_async else value
    coro = _recv(act, pos, topic, deadline, type_)
    return coro if act.defn.is_async else act.blocking(coro)


async def _recv(act: Activation, pos: int, topic: str, deadline: float | None, type_: Any) -> Any:
    mailbox = None if act.actor is None else act.actor.actor_id
    found = await act.rt.store.next_message(mailbox or act.id, topic, mailbox=mailbox is not None)
    if found is not None:
        seq, payload = found
        entry = JournalEntry(position=pos, kind="recv", name=topic, ok=True, result=payload,
                             started_at=act.rt.clock.now(), ended_at=act.rt.clock.now())  # fmt: skip
        await act.append(Append(instance_id=act.id, token=act.token, entries=(entry,),
                                consumes=((topic, seq),), mailbox=mailbox))  # fmt: skip
        return serializer.decode(payload, type_)
    if deadline is not None and act.rt.clock.now() >= deadline:
        await act.append(Append(instance_id=act.id, token=act.token,
                                 entries=(act.make_entry(pos, "recv", topic, None),)))  # fmt: skip
        return None
    await act.wait_for_message(pos, deadline, topic)


def set_event(act: Activation, key: str, value: Any) -> None:
    """Publish ``value`` under ``key``, readable from outside; recorded with its entry."""
    payload = serializer.encode(value)  # before the position: a bad value takes none
    pos, entry = act.take("set_event", key)
    if entry is not None:
        return
    act.append_soon(
        Append(instance_id=act.id, token=act.token, entries=(act.make_entry(pos, "set_event", key, value),),
               events=((key, payload, act.rt.clock.now()),))
    )  # fmt: skip
