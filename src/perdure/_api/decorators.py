"""``@perdure.workflow`` and ``@perdure.step``: build a definition and register it.

Decorating only registers. The returned objects keep the user's function as
``.fn``; a step called inside a workflow becomes a durable step, and anywhere
else says where it may be called.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar, overload

from perdure._model.definitions import Definition, Kind, Registry, check_name, default_registry
from perdure._model.errors import InvalidArgument
from perdure._model.policies import DEFAULT_RETRY, RetryPolicy
from perdure._runtime import runner

P = ParamSpec("P")
R = TypeVar("R")


class _Registered:
    """What decorating returns: the definition, wrapping the user's function."""

    def __init__(self, definition: Definition) -> None:
        self.definition = definition
        functools.update_wrapper(self, definition.fn)  # type: ignore[arg-type]  # copies name and doc onto an object

    @property
    def name(self) -> str:
        """The registered name, recorded in journals."""
        return self.definition.name

    @property
    def fn(self) -> Callable[..., Any]:
        """The undecorated function (a direct call runs it plainly, not durably)."""
        return self.definition.fn

    def __repr__(self) -> str:
        return f"<perdure {self.definition.kind} {self.name!r}>"


class Workflow(_Registered, Generic[P, R]):
    """A registered workflow; start it with ``engine.start(wf, *args)``."""


class Step(_Registered, Generic[P, R]):
    """A registered step. In an ``async def`` workflow, ``await step(...)``; in a ``def``
    workflow, ``step(...)`` returns the value itself."""

    if TYPE_CHECKING:

        def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]: ...

    else:
        __call__ = runner.step_call  # written out there, with the replay fast path


class _WorkflowDecorator(Protocol):
    """``@perdure.workflow(...)`` with options: keeps the function's types."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Workflow[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Workflow[P, R]: ...


class _StepDecorator(Protocol):
    """``@perdure.step(...)`` with options: keeps the function's types."""

    @overload
    def __call__(self, fn: Callable[P, Coroutine[Any, Any, R]], /) -> Step[P, R]: ...
    @overload
    def __call__(self, fn: Callable[P, R], /) -> Step[P, R]: ...


def _define(
    kind: Kind,
    fn: Callable[..., Any],
    name: str | None,
    registry: Registry | None,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout: float | None = None,
) -> Definition:
    if not callable(fn) or isinstance(fn, (Workflow, Step)):
        raise InvalidArgument(f"@perdure.{kind} decorates a function, got {fn!r}")
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        raise InvalidArgument(f"@perdure.{kind} cannot decorate a generator function ({fn.__qualname__})")
    if not isinstance(retry, RetryPolicy):
        raise InvalidArgument(f"retry must be a perdure.RetryPolicy, got {retry!r}")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0
    ):
        raise InvalidArgument(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
    definition = Definition(
        kind=kind,
        name=check_name(f"{kind} name", name if name is not None else fn.__qualname__),
        fn=fn,
        is_async=inspect.iscoroutinefunction(fn),
        retry=retry,
        timeout=float(timeout) if timeout is not None else None,
        signature=inspect.signature(fn),
    )
    (registry or default_registry).add(definition)
    return definition


@overload
def workflow(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Workflow[P, R]: ...
@overload
def workflow(fn: Callable[P, R], /) -> Workflow[P, R]: ...
@overload
def workflow(*, name: str | None = None, registry: Registry | None = None) -> _WorkflowDecorator: ...


def workflow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    registry: Registry | None = None,
) -> Any:
    """Register a workflow: ordinary code whose durable operations are recorded and replayed.

    Bare (``@perdure.workflow``) or with options (``@perdure.workflow(name="checkout")``).
    ``name`` defaults to the function's qualified name and is what the journal records.
    """

    def register(f: Callable[..., Any]) -> Workflow[Any, Any]:
        return Workflow(_define(Kind.WORKFLOW, f, name, registry))

    return register if fn is None else register(fn)


@overload
def step(fn: Callable[P, Coroutine[Any, Any, R]], /) -> Step[P, R]: ...
@overload
def step(fn: Callable[P, R], /) -> Step[P, R]: ...
@overload
def step(
    *,
    name: str | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout: float | None = None,
    registry: Registry | None = None,
) -> _StepDecorator: ...


def step(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    retry: RetryPolicy = DEFAULT_RETRY,
    timeout: float | None = None,
    registry: Registry | None = None,
) -> Any:
    """Register a step: a side-effecting call whose result is recorded once it succeeds.

    Failed attempts are retried by ``retry``; ``timeout`` bounds one attempt (seconds).
    """

    def register(f: Callable[..., Any]) -> Step[Any, Any]:
        return Step(_define(Kind.STEP, f, name, registry, retry, timeout))

    return register if fn is None else register(fn)
