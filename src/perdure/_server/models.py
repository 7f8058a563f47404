"""Request and response bodies of the /v1 API that the public views do not already give.

Responses reuse ``WorkflowInfo``, ``HistoryEntry``, ``RunInfo``, ``ScheduleInfo`` and
``WorkflowPage`` as they are: the OpenAPI document is generated from these types, so
what the API says is what the code returns.
"""

from __future__ import annotations

from typing import Any

import msgspec

from perdure import ErrorDetails, Status

MAX_WAIT = 60.0
"""Longest a request may wait for a result or an event, in seconds."""


class StartWorkflow(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Start a registered workflow; with an ``id`` that exists and the same arguments, find it again."""

    workflow: str
    """Registered name of the workflow."""
    args: list[Any] = msgspec.field(default_factory=list)
    """Positional arguments, as JSON; checked against the workflow's annotations."""
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    """Keyword arguments, as JSON."""
    id: str | None = None
    """Workflow id; generated if absent. Reused with other arguments: 409."""
    execution_timeout: float | None = None
    """Seconds after which the workflow fails with WorkflowTimedOut."""


class WorkflowResult(msgspec.Struct, kw_only=True):
    """Where a workflow ended, or that it has not ended yet."""

    id: str
    status: Status
    done: bool
    """False: still going when the wait ran out; ask again."""
    result: Any = None
    """The return value (completed workflows)."""
    error: ErrorDetails | None = None
    """What was raised (failed workflows)."""


class Started(msgspec.Struct, kw_only=True):
    """A started (or found again) workflow, with its result when the request waited for it."""

    id: str
    name: str
    outcome: WorkflowResult | None = None
    """Present when the start asked to ``wait``."""


class SendMessage(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A message for ``perdure.recv(topic)`` in the workflow, or in a call of the actor."""

    topic: str
    value: Any = None
    idempotency_key: str | None = None
    """Sending again with the same key delivers once."""


class QueryRequest(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    args: list[Any] = msgspec.field(default_factory=list)
    """Arguments of the query handler, as JSON."""


class QueryAnswer(msgspec.Struct, kw_only=True):
    result: Any


class EventValue(msgspec.Struct, kw_only=True):
    """The value a workflow published with ``perdure.set_event``."""

    key: str
    found: bool
    """False: not published (yet, or within the wait)."""
    value: Any = None


class Cancelled(msgspec.Struct, kw_only=True):
    id: str
    status: Status
    """Its status after the request: cancelled at once if it was waiting."""


class InvokeActor(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The arguments of an actor method call; the method is named in the path."""

    args: list[Any] = msgspec.field(default_factory=list)
    """Positional arguments, as JSON; checked against the method's annotations."""
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    """Keyword arguments, as JSON."""


class Invocation(msgspec.Struct, kw_only=True):
    """An actor method call: how it ended, or that it has not ended yet.

    A method that raised is not an HTTP error: the call was made and ended, so the
    answer is 200 with ``status: failed`` and the ``error``, and the actor's state is
    as it was before the call."""

    id: str | None
    """The call's id (``type/key/call``): ``GET /v1/actor-calls/{id}?wait=S`` asks again.
    Null for an ephemeral actor's call: nothing is recorded, there is nothing to ask."""
    done: bool
    """False: still going when the wait ran out; ask again."""
    status: Status | None = None
    """completed, failed or cancelled once done; null while it has not ended."""
    result: Any = None
    """What the method returned (completed calls)."""
    error: ErrorDetails | None = None
    """What the method raised (failed calls): its type, message and traceback."""


class CreateSchedule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Start ``workflow`` on every tick of ``cron`` (in ``timezone``) or every ``every`` seconds."""

    id: str
    workflow: str
    args: list[Any] = msgspec.field(default_factory=list)
    kwargs: dict[str, Any] = msgspec.field(default_factory=dict)
    cron: str | None = None
    every: float | None = None
    timezone: str = "UTC"
    overlap: str = "skip"
    """skip | buffer_one | allow_all"""
    catchup: str = "latest"
    """latest | all | none"""


class Triggered(msgspec.Struct, kw_only=True):
    schedule: str
    workflow_id: str


class Health(msgspec.Struct, kw_only=True):
    status: str
    version: str
    database: str
    """The database URL, without credentials."""


class Problem(msgspec.Struct, kw_only=True):
    """An RFC 9457 problem: what went wrong, and what to do."""

    type: str = "about:blank"
    title: str
    """The HTTP status phrase (the type is about:blank)."""
    status: int
    detail: str
    """What is wrong, with the value and what to do."""
    instance: str | None = None
    """The request path."""
    error: str | None = None
    """perdure's error class (NotFound, Conflict, InvalidArgument, ...), when it raised one."""
