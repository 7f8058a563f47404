"""The synchronous facade: the same engine, driven from plain threads.

``with perdure.Engine(url) as engine`` runs the async engine's loop in a
background thread (the portal) and forwards each call to it; no method has a
second body.
"""

from __future__ import annotations

import asyncio
import builtins
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from perdure._api.actors import ActorInfo, ActorPage, ActorRef, ActorStatus, BoundMethod, OplogPage
from perdure._api.decorators import Workflow
from perdure._api.handles import (
    ExecutorInfo,
    HistoryEntry,
    RunInfo,
    ScheduleInfo,
    WorkflowHandle,
    WorkflowInfo,
    WorkflowPage,
)
from perdure._model.errors import InvalidState
from perdure._model.records import Status
from perdure._model.stats import Stats

if TYPE_CHECKING:
    from perdure._api.engine import Engine

T = TypeVar("T")
R = TypeVar("R")
A = TypeVar("A")
P = ParamSpec("P")


class Portal:
    """An event loop on its own thread, and a way to call into it and wait."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="perdure-loop", daemon=True)
        self._thread.start()

    def call(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise InvalidState(
                "a sync perdure Engine was called from a running event loop; "
                "use 'async with perdure.Engine(...)' in async code"
            )
        if self.loop.is_closed():
            raise InvalidState("this Engine was closed; make a new one")
        return asyncio.run_coroutine_threadsafe(fn(*args, **kwargs), self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncHandle(Generic[R]):
    """``WorkflowHandle`` for synchronous code: the same methods, blocking."""

    __slots__ = ("_handle", "_portal")

    def __init__(self, handle: WorkflowHandle[R], portal: Portal) -> None:
        self._handle = handle
        self._portal = portal

    @property
    def id(self) -> str:
        return self._handle.id

    def result(self, timeout: float | None = None) -> R:
        return self._portal.call(self._handle.result, timeout)

    def status(self) -> Status:
        return self._portal.call(self._handle.status)

    def info(self) -> WorkflowInfo:
        return self._portal.call(self._handle.info)

    def history(self) -> list[HistoryEntry]:
        return self._portal.call(self._handle.history)

    def query(self, name: str, *args: Any) -> Any:
        return self._portal.call(self._handle.query, name, *args)

    def runs(self) -> list[RunInfo]:
        return self._portal.call(self._handle.runs)

    def send(self, topic: str, value: Any, *, idempotency_key: str | None = None) -> None:
        self._portal.call(self._handle.send, topic, value, idempotency_key=idempotency_key)

    def get_event(self, key: str) -> Any:
        return self._portal.call(self._handle.get_event, key)

    def wait_event(self, key: str, timeout: float | None = None) -> Any:
        return self._portal.call(self._handle.wait_event, key, timeout)

    def cancel(self) -> Status:
        return self._portal.call(self._handle.cancel)

    def __repr__(self) -> str:
        return f"<SyncHandle {self.id!r}>"


class SyncEngine:
    """``Engine`` for synchronous code: the same methods, blocking."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._portal = Portal()
        try:
            self._portal.call(engine.open)
        except BaseException:
            self._portal.close()
            raise

    def close(self, grace: float = 10.0) -> None:
        if self._portal.loop.is_closed():
            return  # closed already: idempotent, as Engine.close
        try:
            self._portal.call(self.engine.close, grace)
        finally:
            self._portal.close()

    @overload
    def start(
        self,
        workflow: Workflow[Any, R],
        /,
        *args: Any,
        id: str | None = None,
        execution_timeout: float | None = None,
        **kwargs: Any,
    ) -> SyncHandle[R]: ...
    @overload
    def start(
        self,
        workflow: str,
        /,
        *args: Any,
        id: str | None = None,
        execution_timeout: float | None = None,
        **kwargs: Any,
    ) -> SyncHandle[Any]: ...

    def start(
        self,
        workflow: Workflow[Any, Any] | str,
        /,
        *args: Any,
        id: str | None = None,  # noqa: A002 - the documented keyword (id="order-1")
        execution_timeout: float | None = None,
        **kwargs: Any,
    ) -> SyncHandle[Any]:
        handle = self._portal.call(
            self.engine.start, workflow, *args, id=id, execution_timeout=execution_timeout, **kwargs
        )
        return SyncHandle(handle, self._portal)

    def get(self, workflow_id: str) -> SyncHandle[Any]:
        return SyncHandle(self._portal.call(self.engine.get, workflow_id), self._portal)

    def info(self, workflow_id: str) -> WorkflowInfo:
        return self._portal.call(self.engine.info, workflow_id)

    def history(self, workflow_id: str) -> list[HistoryEntry]:
        return self._portal.call(self.engine.history, workflow_id)

    def query(self, workflow_id: str, name: str, *args: Any) -> Any:
        return self._portal.call(self.engine.query, workflow_id, name, *args)

    def runs(self, workflow_id: str) -> list[RunInfo]:
        return self._portal.call(self.engine.runs, workflow_id)

    def list(
        self,
        *,
        status: Status | str | None = None,
        name: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> WorkflowPage:
        return self._portal.call(self.engine.list, status=status, name=name, limit=limit, cursor=cursor)

    def count(self) -> dict[tuple[Status, str], int]:
        return self._portal.call(self.engine.count)

    def cancel(self, workflow_id: str) -> Status:
        return self._portal.call(self.engine.cancel, workflow_id)

    def resume(self, workflow_id: str) -> None:
        self._portal.call(self.engine.resume, workflow_id)

    def send(self, workflow_id: str, topic: str, value: Any, *, idempotency_key: str | None = None) -> None:
        self._portal.call(self.engine.send, workflow_id, topic, value, idempotency_key=idempotency_key)

    def get_event(self, workflow_id: str, key: str, *, type: Any = Any) -> Any:  # noqa: A002 - mirrors Engine
        return self._portal.call(self.engine.get_event, workflow_id, key, type=type)

    def wait_event(
        self,
        workflow_id: str,
        key: str,
        *,
        timeout: float | None = None,
        type: Any = Any,  # noqa: A002
    ) -> Any:
        return self._portal.call(self.engine.wait_event, workflow_id, key, timeout=timeout, type=type)

    def create_schedule(
        self,
        schedule_id: str,
        workflow: Workflow[Any, Any] | str,
        /,
        *args: Any,
        cron: str | None = None,
        every: float | None = None,
        timezone: str = "UTC",
        overlap: str = "skip",
        catchup: str = "latest",
        **kwargs: Any,
    ) -> ScheduleInfo:
        return self._portal.call(
            self.engine.create_schedule, schedule_id, workflow, *args, cron=cron, every=every,
            timezone=timezone, overlap=overlap, catchup=catchup, **kwargs,
        )  # fmt: skip

    def get_schedule(self, schedule_id: str) -> ScheduleInfo:
        return self._portal.call(self.engine.get_schedule, schedule_id)

    def list_schedules(self) -> builtins.list[ScheduleInfo]:
        return self._portal.call(self.engine.list_schedules)

    def pause_schedule(self, schedule_id: str) -> None:
        self._portal.call(self.engine.pause_schedule, schedule_id)

    def resume_schedule(self, schedule_id: str) -> None:
        self._portal.call(self.engine.resume_schedule, schedule_id)

    def trigger_schedule(self, schedule_id: str) -> SyncHandle[Any]:
        return SyncHandle(self._portal.call(self.engine.trigger_schedule, schedule_id), self._portal)

    def delete_schedule(self, schedule_id: str) -> None:
        self._portal.call(self.engine.delete_schedule, schedule_id)

    def result(self, workflow_id: str, *, timeout: float | None = None) -> Any:
        return self._portal.call(self.engine.result, workflow_id, timeout=timeout)

    def executors(self) -> builtins.list[ExecutorInfo]:
        return self._portal.call(self.engine.executors)

    @property
    def executor_stats(self) -> dict[str, int]:
        return self.engine.executor_stats

    @property
    def stats(self) -> Stats:
        return self.engine.stats

    # --- actors ----------------------------------------------------------------

    def actor(self, actor_type: type[A], key: str) -> SyncActorRef[A]:
        return SyncActorRef(self.engine.actor(actor_type, key), self._portal)

    def invoke(
        self,
        actor_type: type[Any] | str,
        key: str,
        method: str,
        /,
        *args: Any,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> Any:
        return self._portal.call(
            self.engine.invoke, actor_type, key, method, *args, idempotency_key=idempotency_key, **kwargs
        )

    def enqueue(
        self,
        actor_type: type[Any] | str,
        key: str,
        method: str,
        /,
        *args: Any,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> str:
        return self._portal.call(
            self.engine.enqueue, actor_type, key, method, *args, idempotency_key=idempotency_key, **kwargs
        )

    def send_actor(
        self,
        actor_type: type[Any] | str,
        key: str,
        topic: str,
        value: Any,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        self._portal.call(
            self.engine.send_actor, actor_type, key, topic, value, idempotency_key=idempotency_key
        )

    def invocation_result(self, invocation_id: str, *, timeout: float | None = None) -> Any:
        return self._portal.call(self.engine.invocation_result, invocation_id, timeout=timeout)

    def list_actors(
        self,
        *,
        type: type[Any] | str | None = None,  # noqa: A002 - mirrors Engine
        key_prefix: str | None = None,
        status: ActorStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ActorPage:
        return self._portal.call(
            self.engine.list_actors,
            type=type,
            key_prefix=key_prefix,
            status=status,
            limit=limit,
            cursor=cursor,
        )

    def actor_state(self, actor_type: type[Any] | str, key: str) -> dict[str, Any]:
        return self._portal.call(self.engine.actor_state, actor_type, key)

    def actor_info(self, actor_type: type[Any] | str, key: str) -> ActorInfo:
        return self._portal.call(self.engine.actor_info, actor_type, key)

    def actor_oplog(
        self, actor_type: type[Any] | str, key: str, *, limit: int = 100, cursor: str | None = None
    ) -> OplogPage:
        return self._portal.call(self.engine.actor_oplog, actor_type, key, limit=limit, cursor=cursor)

    def delete_actor(self, actor_type: type[Any] | str, key: str) -> None:
        self._portal.call(self.engine.delete_actor, actor_type, key)


class SyncActorRef(Generic[A]):
    """``ActorRef`` for synchronous code: ``ref.method(*args)`` blocks and returns the result."""

    __slots__ = ("_portal", "_ref")

    def __init__(self, ref: ActorRef[A], portal: Portal) -> None:
        self._ref = ref
        self._portal = portal

    @property
    def key(self) -> str:
        return self._ref.key

    @property
    def type(self) -> str:
        return self._ref.type

    def __getattr__(self, name: str) -> SyncBoundMethod[..., Any]:
        return SyncBoundMethod(getattr(self._ref, name), self._portal)

    @overload
    def call(
        self,
        method: Callable[Concatenate[A, P], Coroutine[Any, Any, R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> R: ...
    @overload
    def call(self, method: Callable[Concatenate[A, P], R], /, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def call(self, method: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return self._portal.call(_awaited, self._ref.call(method, *args, **kwargs))

    def enqueue(self, method: Callable[Concatenate[A, P], Any], /, *args: P.args, **kwargs: P.kwargs) -> str:
        result: str = self._portal.call(_awaited, self._ref.enqueue(method, *args, **kwargs))
        return result

    def __repr__(self) -> str:
        return f"<SyncActorRef {self._ref.type}/{self._ref.key}>"


class SyncBoundMethod(Generic[P, R]):
    """``ref.method`` of a ``SyncActorRef``: blocks for the result, or ``.enqueue(...)``s.
    Typed as the actor's method by the mypy plugin ``perdure.mypy``."""

    __slots__ = ("_method", "_portal")

    def __init__(self, method: BoundMethod[P, R], portal: Portal) -> None:
        self._method = method
        self._portal = portal

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        result: R = self._portal.call(_awaited, self._method(*args, **kwargs))
        return result

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> str:
        result: str = self._portal.call(_awaited, self._method.enqueue(*args, **kwargs))
        return result


async def _awaited(awaitable: Awaitable[T]) -> T:
    return await awaitable
