"""Durable operations called from workflow code: deterministic helpers and keys.

Each takes a journal position: the first run records its value, replay returns
the recorded one, so code that branches on them replays the same way.
"""

from __future__ import annotations

import math
import random as _random
import uuid as _uuid
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from perdure._codec import serializer
from perdure._model.definitions import Definition, check_name
from perdure._model.errors import InvalidArgument, OutsideWorkflow
from perdure._runtime import context


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
    exist or has ended."""
    act = context.require_activation("perdure.send()")
    check_name("workflow id", workflow_id)
    check_name("topic", topic)
    try:
        result: Awaitable[None] = act.send(workflow_id, topic, value)
    except (TypeError, OverflowError) as exc:
        raise InvalidArgument(f"the value sent on {topic!r} cannot be serialized: {exc}") from None
    return result


def recv(topic: str, *, timeout: float | timedelta | None = None, type: Any = Any) -> Awaitable[Any]:  # noqa: A002 - mirrors msgspec
    """The next message on ``topic`` (in send order), or None after ``timeout``.

    ``await`` it in async workflows. While nothing has arrived the workflow is not in
    memory. ``type`` decodes the value (a dataclass, a Struct, ...); plain JSON otherwise.
    """
    act = context.require_activation("perdure.recv()")
    check_name("topic", topic)
    seconds = None if timeout is None else _seconds("recv timeout", timeout)
    result: Awaitable[Any] = act.recv(topic, seconds, type)
    return result


def set_event(key: str, value: Any) -> None:
    """Publish ``value`` under ``key`` for clients (``handle.get_event``/``wait_event``).

    Recorded in the journal; setting a key again replaces its value.
    """
    act = context.require_activation("perdure.set_event()")
    check_name("event key", key)
    try:
        act.set_event(key, value)
    except (TypeError, OverflowError) as exc:
        raise InvalidArgument(f"the value of event {key!r} cannot be serialized: {exc}") from None


def _seconds(what: str, value: float | timedelta) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise InvalidArgument(f"{what} must be seconds or a timedelta, got {value!r}")
    if seconds < 0:
        raise InvalidArgument(f"{what} must be >= 0, got {value!r}")
    return float(seconds)


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
    try:
        bound = defn.signature.bind(*args, **kwargs)
    except TypeError as exc:
        raise InvalidArgument(f"wrong arguments for workflow {defn.name!r}{defn.signature}: {exc}") from None
    try:
        return serializer.encode_input(bound.arguments)
    except (TypeError, OverflowError):
        for arg_name, value in bound.arguments.items():
            try:
                serializer.encode(value)
            except (TypeError, OverflowError) as exc:
                raise InvalidArgument(
                    f"argument {arg_name!r} of workflow {defn.name!r} cannot be serialized: {exc}; "
                    "pass JSON-like values, dataclasses, msgspec Structs, datetimes, UUIDs or bytes"
                ) from None
        raise
