"""The public API: what ``perdure`` exports, what importing it costs, and sync/async parity."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

import perdure

EXPORTED = [
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


def test_all_is_pinned_so_every_api_change_is_a_deliberate_diff() -> None:
    assert perdure.__all__ == EXPORTED


def test_all_is_sorted_and_every_name_exists() -> None:
    assert perdure.__all__ == sorted(perdure.__all__)
    for name in perdure.__all__:
        assert hasattr(perdure, name), name


def test_exported_classes_and_functions_present_themselves_as_perdure() -> None:
    for name in perdure.__all__:
        obj = getattr(perdure, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "perdure", f"perdure.{name}.__module__ is {obj.__module__!r}"


def test_errors_form_one_tree_and_subclass_the_builtins_callers_catch() -> None:
    errors = [getattr(perdure, n) for n in perdure.__all__ if n.endswith(("Error", "Failed", "Cancelled"))]
    errors += [perdure.Conflict, perdure.NotFound, perdure.InvalidArgument, perdure.InvalidState]
    errors += [perdure.OutsideWorkflow, perdure.ResultTimeout, perdure.StepTimedOut, perdure.StaleClaim]
    errors += [perdure.StoreUnavailable, perdure.IncompatibleDatabase]
    for cls in errors:
        assert issubclass(cls, perdure.PerdureError), cls
    assert issubclass(perdure.InvalidArgument, ValueError)
    assert issubclass(perdure.RegistrationError, perdure.InvalidArgument)
    assert issubclass(perdure.NotFound, LookupError)
    assert issubclass(perdure.OutsideWorkflow, RuntimeError)
    assert issubclass(perdure.ResultTimeout, TimeoutError)
    assert issubclass(perdure.StoreUnavailable, perdure.StoreError)
    assert (
        perdure.InvalidArgument.http_status,
        perdure.NotFound.http_status,
        perdure.Conflict.http_status,
    ) == (
        400,
        404,
        409,
    )


HEAVY = ["click", "psycopg", "psycopg2", "psycopg_pool", "asyncpg"]
ASGI = ["starlette", "fastapi", "litestar", "uvicorn", "hypercorn", "asgiref", "sanic", "quart", "aiohttp"]


def test_importing_perdure_loads_no_cli_database_driver_or_asgi_framework() -> None:
    code = (
        "import json, sys\n"
        "import perdure\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(proc.stdout))
    assert "perdure" in loaded
    assert not loaded & set(HEAVY + ASGI), f"import perdure loaded {sorted(loaded & set(HEAVY + ASGI))}"
    proc = subprocess.run(
        [sys.executable, "-c", "import sys, perdure; print('perdure._cli' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert proc.stdout.strip() == "False"


# --- sync and async flavours ----------------------------------------------------

ASYNC_ONLY = {"open"}
"""Engine methods with no sync twin: ``with perdure.Engine(...)`` opens the engine itself."""
PLAIN = {"actor"}
"""Methods that do no I/O on either flavour (they make a reference)."""


def public(cls: type) -> set[str]:
    return {n for n in dir(cls) if not n.startswith("_")}


def parameters(fn: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    """A signature without its return annotation or ``self``: names, kinds, defaults, annotations."""
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default, p.annotation) for p in sig.parameters.values() if p.name != "self"]


PAIRS = [
    (perdure.Engine, perdure.SyncEngine, ASYNC_ONLY),
    (perdure.WorkflowHandle, perdure.SyncHandle, set()),
]


@pytest.mark.parametrize(("async_cls", "sync_cls", "async_only"), PAIRS, ids=["engine", "handle"])
def test_sync_and_async_flavours_have_the_same_public_methods(
    async_cls: type, sync_cls: type, async_only: set[str]
) -> None:
    assert public(async_cls) - async_only == public(sync_cls)


@pytest.mark.parametrize(("async_cls", "sync_cls", "async_only"), PAIRS, ids=["engine", "handle"])
def test_sync_and_async_flavours_have_the_same_signatures(
    async_cls: type, sync_cls: type, async_only: set[str]
) -> None:
    for name in sorted(public(sync_cls)):
        a, s = inspect.getattr_static(async_cls, name), inspect.getattr_static(sync_cls, name)
        if isinstance(a, property) or isinstance(s, property) or not callable(a):
            assert isinstance(s, property) or not callable(s), (
                f"{name}: an attribute on one, a method on the other"
            )
            continue
        assert inspect.iscoroutinefunction(a) is (name not in PLAIN), f"{async_cls.__name__}.{name}"
        assert not inspect.iscoroutinefunction(s), f"{sync_cls.__name__}.{name} should block"
        assert parameters(a) == parameters(s), f"{name} differs"


def test_type_hints_of_exported_dataclasses_resolve_after_the_module_rename() -> None:
    # OpenAPI generators and msgspec read them with typing.get_type_hints.
    import typing
    from datetime import datetime

    assert typing.get_type_hints(perdure.WorkflowInfo)["created_at"] == datetime
    assert typing.get_type_hints(perdure.HistoryEntry)["error"] == perdure.ErrorDetails | None


def test_the_cli_loads_the_http_client_and_server_libraries_only_when_a_verb_needs_them() -> None:
    # `perdure bench` runs its measured children through the CLI: they must stay light.
    code = "import json, sys\nimport perdure._cli.main\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(json.loads(proc.stdout))
    assert not loaded & {"httpx", "httpcore", "prometheus_client", *ASGI}, sorted(loaded)
