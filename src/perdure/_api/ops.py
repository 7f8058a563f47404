"""Durable operations called from workflow code: deterministic helpers and keys.

Each takes a journal position: the first run records its value, replay returns
the recorded one, so code that branches on them replays the same way.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import math
import random as _random
import uuid as _uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Generic, Literal, NoReturn, TypeVar, cast

from perdure._api.decorators import Workflow
from perdure._codec import serializer
from perdure._model.definitions import Definition, Kind, check_name
from perdure._model.errors import InvalidArgument, OutsideWorkflow, WaitExpired, WaitTimedOut
from perdure._runtime import context, messaging
from perdure._runtime.ready import Ready

R = TypeVar("R")


def now() -> datetime:
    """The current time (UTC, timezone-aware), recorded: replay returns the same instant."""
    act = context.require_activation("perdure.now()")
    return act.record("now", lambda: datetime.fromtimestamp(act.rt.clock.now(), UTC), datetime)


def random() -> float:
    """A float in [0, 1), recorded: replay returns the same number."""
    act = context.require_activation("perdure.random()")
    return act.record("random", _random.random, float)


def uuid4() -> _uuid.UUID:
    """A random UUID, recorded: replay returns the same one."""
    act = context.require_activation("perdure.uuid4()")
    return act.record("uuid4", _uuid.uuid4, _uuid.UUID)


def idempotency_key() -> str:
    """A key unique to the running step and the same for all its attempts, anywhere.

    Pass it to external APIs so that a step re-run after a crash is recognised.
    """
    key = context.step_scope.get()
    if key is None:
        raise OutsideWorkflow(
            "perdure.idempotency_key() was called outside a step; call it inside a "
            "@perdure.step function, where it names that step's execution"
        )
    return key


def sleep(duration: float | timedelta) -> Awaitable[None]:
    """Sleep durably for ``duration`` (seconds or a timedelta); ``await`` it in async workflows.

    Survives restarts: the wake-up time is recorded, and a sleeping workflow is not in
    memory. In a ``def`` workflow the call blocks and returns None.
    """
    act = context.require_activation("perdure.sleep()")
    seconds = _seconds("sleep duration", duration)
    result: Awaitable[None] = act.sleep_until(act.rt.clock.now() + seconds)
    return result


def sleep_until(when: datetime) -> Awaitable[None]:
    """Sleep durably until ``when`` (a timezone-aware datetime); see ``sleep``."""
    act = context.require_activation("perdure.sleep_until()")
    if not isinstance(when, datetime):
        raise InvalidArgument(f"sleep_until takes a datetime, got {when!r}")
    if when.tzinfo is None:
        raise InvalidArgument(
            f"sleep_until needs a timezone-aware datetime, got naive {when.isoformat()}; "
            "use e.g. datetime(..., tzinfo=timezone.utc)"
        )
    result: Awaitable[None] = act.sleep_until(when.timestamp())
    return result


def send(workflow_id: str, topic: str, value: Any) -> Awaitable[None]:
    """Send ``value`` to workflow ``workflow_id`` on ``topic``, exactly once; ``await`` it
    in async workflows. Raises ``NotFound``/``InvalidState`` if the target does not
    exist or has ended. To send to an actor, use ``perdure.send_actor``."""
    act = context.require_activation("perdure.send()")
    check_send_target(workflow_id, "perdure.send_actor(Type, key, topic, value)")
    check_name("topic", topic)
    try:
        result: Awaitable[None] = messaging.send(act, workflow_id, topic, value)
    except (TypeError, OverflowError) as exc:
        raise _unserializable(topic, exc) from None
    return result


def check_send_target(workflow_id: object, instead: str) -> None:
    """``workflow_id`` as a send's target; an actor's id (``Type/key``) says what to call instead."""
    if isinstance(workflow_id, str) and workflow_id.count("/") == 1 and "" not in workflow_id.split("/"):
        raise InvalidArgument(
            f"{workflow_id!r} is not a workflow id; to send to the mailbox of actor {workflow_id!r}, use {instead}"
        )
    check_name("workflow id", workflow_id)


def encode_message(topic: str, value: Any) -> bytes:
    """``value`` as the payload of a message on ``topic``; ``InvalidArgument`` if it cannot be."""
    try:
        return serializer.encode(value)
    except (TypeError, OverflowError) as exc:
        raise _unserializable(topic, exc) from None


def _unserializable(topic: str, exc: Exception) -> InvalidArgument:
    return InvalidArgument(f"the value sent on {topic!r} cannot be serialized: {exc}")


def client_sender_key(idempotency_key: str | None) -> str:
    """The sender key of a message from a client: the caller's key, or one per call (a commit
    retried after a lost acknowledgement must not deliver twice)."""
    if idempotency_key is None:
        return f"send:{_uuid.uuid4().hex}"
    check_name("idempotency key", idempotency_key)
    return f"client:{idempotency_key}"


def recv(topic: str, *, timeout: float | timedelta | None = None, type: Any = Any) -> Awaitable[Any]:  # noqa: A002 - mirrors msgspec
    """The next message on ``topic`` (in send order), or None after ``timeout``.

    ``await`` it in async workflows. While nothing has arrived the workflow is not in
    memory. ``type`` decodes the value (a dataclass, a Struct, ...); plain JSON otherwise.
    In an actor's method the message comes from the actor's mailbox (``send_actor``), and
    the call keeps the actor's turn while it waits.
    """
    act = context.require_activation("perdure.recv()")
    check_name("topic", topic)
    seconds = None if timeout is None else _seconds("recv timeout", timeout)
    result: Awaitable[Any] = messaging.recv(act, topic, seconds, type)
    return result


def set_event(key: str, value: Any) -> None:
    """Publish ``value`` under ``key`` for clients (``handle.get_event``/``wait_event``).

    Recorded in the journal; setting a key again replaces its value.
    """
    act = context.require_activation("perdure.set_event()")
    check_name("event key", key)
    try:
        messaging.set_event(act, key, value)
    except (TypeError, OverflowError) as exc:
        raise InvalidArgument(f"the value of event {key!r} cannot be serialized: {exc}") from None


def _seconds(what: str, value: float | timedelta) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise InvalidArgument(f"{what} must be seconds or a timedelta, got {value!r}")
    if seconds < 0:
        raise InvalidArgument(f"{what} must be >= 0, got {value!r}")
    return float(seconds)


_PACKAGE = str(Path(__file__).resolve().parents[1])


def wait_for(
    awaitable: Awaitable[R] | Callable[[], Awaitable[R]] | Callable[[], R], timeout: float | timedelta
) -> Awaitable[R]:
    """Wait durably for ``awaitable``, at most ``timeout`` (seconds or a timedelta) of durable time.

    ``await`` it in async workflows. Pass a function of yours that returns it (``lambda:
    perdure.recv("approval")``), or the coroutine of one of your ``async def`` functions;
    in a ``def`` workflow, pass a function and ``wait_for`` returns its value. If the
    deadline passes while the code waits (a sleep, a message, a child's or an actor's
    result, a step's retry backoff), the wait stops there and ``perdure.WaitTimedOut`` is
    raised; a step already running finishes and is recorded first. The deadline is
    recorded, so a replay, however late, times out at the same point.
    """
    act = context.require_activation("perdure.wait_for()")
    seconds = _seconds("wait_for timeout", timeout)
    if (inspect.iscoroutine(awaitable) and awaitable.cr_code.co_filename.startswith(_PACKAGE)) or isinstance(
        awaitable, Ready
    ):
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise InvalidArgument(
            "perdure.wait_for() needs to start what it waits for itself: pass a function, e.g. "
            "perdure.wait_for(lambda: perdure.recv('topic'), timeout), not the operation's result"
        )
    if not (inspect.isawaitable(awaitable) or callable(awaitable)):
        raise InvalidArgument(f"perdure.wait_for() takes an awaitable or a function, got {awaitable!r}")
    outer = context.wait_deadline.get()
    own = act.record("deadline", lambda: act.rt.clock.now() + seconds, float)
    deadline = own if outer is None else min(own, outer)
    if not act.defn.is_async:
        if not callable(awaitable):
            raise InvalidArgument("in a def workflow, pass perdure.wait_for() a function to call")
        token = context.wait_deadline.set(deadline)
        try:
            return cast("Awaitable[R]", awaitable())
        except WaitExpired as exc:
            if exc.deadline == own:
                raise WaitTimedOut(seconds) from None
            raise
        finally:
            context.wait_deadline.reset(token)

    async def run() -> R:
        value = awaitable() if callable(awaitable) else awaitable
        return await value if inspect.isawaitable(value) else value

    async def bounded() -> R:
        ctx = contextvars.copy_context()
        ctx.run(context.wait_deadline.set, deadline)
        task = asyncio.get_running_loop().create_task(run(), context=ctx)
        try:
            return await task
        except WaitExpired as exc:
            if exc.deadline == own:
                raise WaitTimedOut(seconds) from None
            raise

    return bounded()


def continue_as_new(*args: Any, **kwargs: Any) -> NoReturn:
    """End this run and start the workflow again, same id, with these arguments.

    The new run begins with an empty journal, so a loop that never ends (a poller,
    an entity) keeps a bounded history; ``handle.runs()`` lists the runs before.
    Unconsumed messages and published events carry over.
    """
    act = context.require_activation("perdure.continue_as_new()")
    act.continue_as_new(encode_arguments(act.defn, args, kwargs))


def encode_arguments(defn: Definition, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """The input payload of ``defn(*args, **kwargs)``; ``InvalidArgument`` naming what is wrong."""
    return encode_checked(defn, args, kwargs)[0]


def encode_checked(
    defn: Definition, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[bytes, dict[str, Any]]:
    """``encode_arguments``, and the arguments as the runner will decode them (they are decoded
    here to check them: a caller that runs the call at once need not decode them again)."""
    try:
        arguments = _bind(defn.signature, args, kwargs)
    except TypeError as exc:
        raise InvalidArgument(
            f"wrong arguments for {defn.kind} {defn.name!r}{defn.signature}: {exc}"
        ) from None
    try:
        data = serializer.encode_input(arguments)
        # What the runner will decode must decode now: a value that does not fit its annotation
        # (a str for an int, NaN for a float) would otherwise park the instance at its first run.
        return data, serializer.decode_input(defn.signature, defn.hints(), data)
    except ValueError as exc:  # msgspec.ValidationError
        raise InvalidArgument(
            f"arguments of {defn.kind} {defn.name!r} do not fit its annotations: {exc}; pass values "
            "of the annotated types (NaN and infinity are not JSON numbers)"
        ) from None
    except (TypeError, OverflowError):
        for arg_name, value in arguments.items():
            try:
                serializer.encode(value)
            except (TypeError, OverflowError) as exc:
                raise InvalidArgument(
                    f"argument {arg_name!r} of {defn.kind} {defn.name!r} cannot be serialized: {exc}; "
                    "pass JSON-like values, dataclasses, msgspec Structs, datetimes, UUIDs or bytes"
                ) from None
        raise


_plain: dict[int, tuple[inspect.Signature, tuple[str, ...] | None]] = {}


def _bind(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """``signature.bind(*args, **kwargs).arguments``; without the general binder for the usual
    call (every parameter given by position, none of them special), which is most of its cost."""
    found = _plain.get(id(signature))
    if found is None or found[0] is not signature:
        params = signature.parameters.values()
        plain = all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params)
        found = _plain[id(signature)] = (signature, tuple(signature.parameters) if plain else None)
    names = found[1]
    if names is not None and not kwargs and len(args) == len(names):
        return dict(zip(names, args, strict=True))
    return signature.bind(*args, **kwargs).arguments


ParentClose = Literal["terminate", "request_cancel", "abandon"]
PARENT_CLOSE = ("terminate", "request_cancel", "abandon")


class ChildHandle(Generic[R]):
    """A child workflow, seen from the workflow that started it."""

    __slots__ = ("_type", "id")

    def __init__(self, child_id: str, type_: Any) -> None:
        self.id = child_id
        self._type = type_

    def result(self) -> Awaitable[R]:
        """Wait durably for the child's end: its value, or ``WorkflowFailed`` /
        ``WorkflowCancelled``. ``await`` it in async workflows."""
        act = context.require_activation("ChildHandle.result()")
        outcome: Awaitable[R] = messaging.child_result(act, self.id, self._type)
        return outcome

    def send(self, topic: str, value: Any) -> Awaitable[None]:
        """Send the child a message; see ``perdure.send``."""
        return send(self.id, topic, value)

    def __repr__(self) -> str:
        return f"<ChildHandle {self.id!r}>"


def start_child(
    workflow: Workflow[Any, R],
    /,
    *args: Any,
    id: str | None = None,  # noqa: A002 - the same keyword as Engine.start
    parent_close: ParentClose | None = None,
    **kwargs: Any,
) -> Awaitable[ChildHandle[R]]:
    """Start ``workflow(*args, **kwargs)`` as a child of the running workflow, exactly once.

    ``await`` it in async workflows. The child is created in the same commit as the
    parent's journal entry. ``id`` defaults to one derived from the parent's id and
    position. ``parent_close`` says what the parent's end does to a child still
    running: ``terminate`` (cancel it at once; the default in workflows),
    ``request_cancel`` (cancel it and let it clean up) or ``abandon`` (leave it; the
    default in actor methods, whose calls end long before what they start). Cancelling
    the parent thus reaches it.
    """
    act = context.require_activation("perdure.start_child()")
    if not isinstance(workflow, Workflow):
        raise InvalidArgument(f"start_child() takes a @perdure.workflow function, got {workflow!r}")
    if parent_close is None:
        parent_close = "abandon" if act.actor is not None else "terminate"
    if parent_close not in PARENT_CLOSE:
        raise InvalidArgument(f"parent_close must be one of {', '.join(PARENT_CLOSE)}, got {parent_close!r}")
    if id is not None:
        check_name("child workflow id", id)
    defn = act.rt.registry.get(Kind.WORKFLOW, workflow.name)
    data = encode_arguments(defn, args, kwargs)
    ret = act.rt.hints(defn)[1]
    started = messaging.start_child(act, defn, data, id, parent_close)
    if not act.defn.is_async:
        return cast("Awaitable[ChildHandle[R]]", ChildHandle(started, ret))

    async def handle() -> ChildHandle[R]:
        return ChildHandle(await started, ret)

    return handle()


def decode_arguments(defn: Definition, data: bytes) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call arguments an input payload made by ``encode_arguments`` holds."""
    values = serializer.decode_input(defn.signature, defn.hints(), data)
    bound = inspect.BoundArguments(defn.signature, values)
    return bound.args, bound.kwargs


def on_query(name: str, handler: Callable[..., Any]) -> None:
    """Register ``handler`` to answer ``handle.query(name, *args)`` with the workflow's state.

    The handler must only read (it runs beside the workflow, or on a read-only replay
    of it); its return value goes back as JSON.
    """
    act = context.require_activation("perdure.on_query()")
    check_name("query name", name)
    if not callable(handler):
        raise InvalidArgument(f"on_query({name!r}, ...) needs a callable handler, got {handler!r}")
    act.on_query(name, handler)
