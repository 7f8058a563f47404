"""perdure: durable execution for Python.

Plain functions become durable workflows and steps; every step they take is
recorded, so they survive crashes and restarts and never repeat finished work.

How data flows, top to bottom (each layer imports only the ones below it)::

    _cli                 the `perdure` command: server, worker, migrate, workflow and schedule verbs
                         (over HTTP), bench
    _server              the HTTP API (Litestar app, /v1, OpenAPI, problem+json, /metrics)
                         and the server and worker processes
    _api                 decorators (register), ops (now, random, uuid4, idempotency_key),
                         engine (Engine: composition root), sync (SyncEngine), handles
    _runtime             executor (claims, drives, leases), runner (activation: replay,
                         steps, retries), context (ContextVar), retry (pure math), clock
    _journal             cursor (pure replay cursor), writer (group commit)
    _store | _codec      protocol (Store), sqlite, postgres, rows (shared by both), faulty
                         (fault injection), retrying, migrate, sql/;  serializer (msgspec JSON)
    _model               errors, definitions (+ Registry), records, policies, crashpoints

Users import ``perdure`` only; everything under ``_`` may move.
"""

import dataclasses as _dataclasses
import typing as _typing

from perdure._api.actors import (
    ActorInfo,
    ActorPage,
    ActorRef,
    OplogEntry,
    OplogPage,
    actor,
    actor_ref,
    send_actor,
)
from perdure._api.decorators import Step, Workflow, step, workflow
from perdure._api.engine import Engine, migrate
from perdure._api.handles import (
    ErrorDetails,
    ExecutorInfo,
    HistoryEntry,
    RunInfo,
    ScheduleInfo,
    WorkflowHandle,
    WorkflowInfo,
    WorkflowPage,
)
from perdure._api.ops import (
    ChildHandle,
    continue_as_new,
    idempotency_key,
    now,
    on_query,
    random,
    recv,
    send,
    set_event,
    sleep,
    sleep_until,
    start_child,
    uuid4,
    wait_for,
)
from perdure._api.sync import SyncEngine, SyncHandle
from perdure._model.definitions import Registry
from perdure._model.errors import (
    ActorCallFailed,
    Conflict,
    IncompatibleDatabase,
    InvalidArgument,
    InvalidState,
    NonDeterminismError,
    NonRetryableError,
    NotFound,
    OutsideWorkflow,
    PerdureError,
    QueryFailed,
    RegistrationError,
    ResultTimeout,
    StaleClaim,
    StepFailed,
    StepTimedOut,
    StoreError,
    StoreIntegrityError,
    StoreUnavailable,
    WaitTimedOut,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowTimedOut,
)
from perdure._model.policies import RetryPolicy
from perdure._model.records import Status

__all__ = [
    "ActorCallFailed",
    "ActorInfo",
    "ActorPage",
    "ActorRef",
    "ChildHandle",
    "Conflict",
    "Engine",
    "ErrorDetails",
    "ExecutorInfo",
    "HistoryEntry",
    "IncompatibleDatabase",
    "InvalidArgument",
    "InvalidState",
    "NonDeterminismError",
    "NonRetryableError",
    "NotFound",
    "OplogEntry",
    "OplogPage",
    "OutsideWorkflow",
    "PerdureError",
    "QueryFailed",
    "RegistrationError",
    "Registry",
    "ResultTimeout",
    "RetryPolicy",
    "RunInfo",
    "ScheduleInfo",
    "StaleClaim",
    "Status",
    "Step",
    "StepFailed",
    "StepTimedOut",
    "StoreError",
    "StoreIntegrityError",
    "StoreUnavailable",
    "SyncEngine",
    "SyncHandle",
    "WaitTimedOut",
    "Workflow",
    "WorkflowCancelled",
    "WorkflowFailed",
    "WorkflowHandle",
    "WorkflowInfo",
    "WorkflowPage",
    "WorkflowTimedOut",
    "actor",
    "actor_ref",
    "continue_as_new",
    "idempotency_key",
    "migrate",
    "now",
    "on_query",
    "random",
    "recv",
    "send",
    "send_actor",
    "set_event",
    "sleep",
    "sleep_until",
    "start_child",
    "step",
    "uuid4",
    "wait_for",
    "workflow",
]

__version__ = "0.1.0"

for _name in __all__:
    _obj = globals()[_name]
    if _dataclasses.is_dataclass(_obj) and isinstance(_obj, type):
        # Resolve field annotations while their defining module is still known: after the
        # rename below, typing.get_type_hints (OpenAPI generators, msgspec) would look them
        # up in this package's namespace and fail on names like ``datetime``.
        _obj.__annotations__ = _typing.get_type_hints(_obj)
    if getattr(_obj, "__module__", "").startswith("perdure._"):
        try:
            _obj.__module__ = "perdure"
        except (AttributeError, TypeError):
            pass
del _name, _obj, _dataclasses, _typing
