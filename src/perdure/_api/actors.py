"""Actors: ``@perdure.actor`` classes, typed references to them, and the Engine's actor methods.

An actor is a plain class whose instance attributes are its state; one instance
lives per (type, key). ``@perdure.actor`` registers the class and each public
method (as ``Type.method``). A reference (``engine.actor(Type, key)`` from
clients, ``perdure.actor_ref(Type, key)`` inside workflows and actors) calls the
methods: each call is an invocation in the actor's inbox, run one at a time. From
durable code a call happens exactly once (its id comes from the caller's id and
journal position); clients may pass an idempotency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import random
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Concatenate, Generic, Literal, ParamSpec, TypeVar, overload

from perdure._api.core import EngineCore
from perdure._api.handles import ErrorDetails
from perdure._api.ops import client_sender_key, encode_arguments, encode_checked, encode_message
from perdure._codec import serializer
from perdure._model.definitions import Definition, Kind, Registry, check_name, default_registry
from perdure._model.errors import (
    ActorCallFailed,
    Conflict,
    InvalidArgument,
    InvalidState,
    NotFound,
    ResultTimeout,
    WorkflowCancelled,
)
from perdure._model.policies import RetryPolicy
from perdure._model.records import (
    TERMINAL,
    ActorRow,
    DeleteActor,
    Enqueue,
    EnqueueOutcome,
    InstanceRow,
    Message,
    OplogRow,
    Post,
    Status,
)
from perdure._runtime import context, messaging

if TYPE_CHECKING:
    pass

A = TypeVar("A")
P = ParamSpec("P")
R = TypeVar("R")
ActorStatus = Literal["idle", "busy"]
_NO_RETRY = RetryPolicy(max_attempts=1)
_ids = random.Random()
os.register_at_fork(after_in_child=_ids.seed)  # a forked child must not repeat the parent's ids


def _call_id() -> str:
    """32 random hex digits for a client call without an idempotency key: unique, not secret
    (the oplog shows them), and drawn without a system call, which on the loop's thread would
    give up the GIL to whatever thread runs a method or a commit."""
    return f"{_ids.getrandbits(128):032x}"


# --- the decorator ------------------------------------------------------------------


@overload
def actor(cls: type[A], /) -> type[A]: ...
@overload
def actor(
    *, name: str | None = None, durable: bool = True, version: int = 1, registry: Registry | None = None
) -> Callable[[type[A]], type[A]]: ...


def actor(
    cls: type[Any] | None = None,
    /,
    *,
    name: str | None = None,
    durable: bool = True,
    version: int = 1,
    registry: Registry | None = None,
) -> Any:
    """Register an actor class: keyed objects whose attributes survive crashes and restarts.

    Bare (``@perdure.actor``) or with options. ``name`` defaults to the class's
    qualified name. ``durable=False`` makes an ephemeral actor: a fresh object per
    call, nothing saved. ``version`` is the version of the state's shape: when it
    grows, a classmethod ``upgrade(state: dict, from_version: int) -> dict`` turns
    state saved by older versions into the new shape. ``__init__`` takes the key.
    Returns the class unchanged.
    """
    if not isinstance(durable, bool):
        raise InvalidArgument(f"durable must be True or False, got {durable!r}")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidArgument(f"version must be an integer >= 1, got {version!r}")

    def register(c: type[Any]) -> type[Any]:
        _define_actor(c, name, durable, version, registry or default_registry)
        return c

    return register if cls is None else register(cls)


def _define_actor(cls: type[Any], name: str | None, durable: bool, version: int, registry: Registry) -> None:
    if not inspect.isclass(cls):
        raise InvalidArgument(f"@perdure.actor decorates a class, got {cls!r}")
    type_name = check_name("actor name", name if name is not None else cls.__qualname__)
    try:
        inspect.signature(cls).bind("key")
    except (TypeError, ValueError):
        raise InvalidArgument(
            f"actor class {cls.__qualname__} must accept its key as the one argument of __init__ "
            "(def __init__(self, key: str) -> None)"
        ) from None
    upgrade = inspect.getattr_static(cls, "upgrade", None)
    if upgrade is not None and not isinstance(upgrade, classmethod):
        raise InvalidArgument(f"{cls.__qualname__}.upgrade must be a classmethod (cls, state, from_version)")
    methods = _public_methods(cls)
    if not methods:
        raise InvalidArgument(f"actor class {cls.__qualname__} has no public methods to call")
    registry.add(Definition(kind=Kind.ACTOR, name=type_name, fn=cls, is_async=False,
                            signature=inspect.signature(cls), durable=durable, version=version))  # fmt: skip
    for method_name, fn in methods.items():
        full = f"{type_name}.{method_name}"
        sig = inspect.signature(fn)
        params = list(sig.parameters.values())[1:]  # without self
        registry.add(Definition(kind=Kind.METHOD, name=full, fn=fn, is_async=inspect.iscoroutinefunction(fn),
                                signature=sig.replace(parameters=params), actor=type_name))  # fmt: skip
        if not durable:  # called from durable code, an ephemeral actor's method is a step
            step = _ephemeral_step(type_name, cls, fn)
            registry.add(Definition(kind=Kind.STEP, name=full, fn=step, is_async=inspect.iscoroutinefunction(fn),
                                    retry=_NO_RETRY, signature=inspect.signature(step)))  # fmt: skip


def _public_methods(cls: type[Any]) -> dict[str, Callable[..., Any]]:
    found: dict[str, Callable[..., Any]] = {}
    for attr in dir(cls):
        if attr.startswith("_") or attr == "upgrade":
            continue
        member = inspect.getattr_static(cls, attr)
        if inspect.isfunction(member):
            if inspect.isgeneratorfunction(member) or inspect.isasyncgenfunction(member):
                raise InvalidArgument(f"actor method {cls.__qualname__}.{attr} cannot be a generator")
            found[attr] = member
    return found


@contextlib.contextmanager
def _ephemeral(actor: str) -> Iterator[None]:
    """Mark the code run inside as ephemeral actor ``actor``'s, so that a durable operation
    there says why it cannot run."""
    token = context.ephemeral_actor.set(actor)
    try:
        yield
    finally:
        context.ephemeral_actor.reset(token)


def _ephemeral_step(type_name: str, cls: type[Any], fn: Callable[..., Any]) -> Callable[..., Any]:
    """A function ``(key, *args)`` that calls ``fn`` on a fresh object."""
    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def call_async(key: str, *args: Any, **kwargs: Any) -> Any:
            with _ephemeral(f"{type_name}/{key}"):
                return await fn(cls(key), *args, **kwargs)

        wrapper: Callable[..., Any] = call_async
    else:

        @functools.wraps(fn)
        def call(key: str, *args: Any, **kwargs: Any) -> Any:
            with _ephemeral(f"{type_name}/{key}"):
                return fn(cls(key), *args, **kwargs)

        wrapper = call
    sig = inspect.signature(fn)
    key = inspect.Parameter("key", inspect.Parameter.POSITIONAL_ONLY, annotation=str)
    wrapper.__signature__ = sig.replace(parameters=[key, *list(sig.parameters.values())[1:]])  # type: ignore[attr-defined]
    return wrapper


def _spec(registry: Registry, actor_type: type[Any] | str) -> Definition:
    if isinstance(actor_type, str):
        name = actor_type
    elif inspect.isclass(actor_type):
        name = _registered_name(registry, actor_type)
    else:
        raise InvalidArgument(f"expected an @perdure.actor class or its registered name, got {actor_type!r}")
    return registry.get(Kind.ACTOR, name)


def _registered_name(registry: Registry, cls: type[Any]) -> str:
    for name in (cls.__qualname__, *registry.names(Kind.ACTOR)):
        found = registry.find(Kind.ACTOR, name)
        if found is not None and found.fn is cls:
            return name
    raise InvalidArgument(f"{cls.__qualname__} is not an actor class; decorate it with @perdure.actor")


def _method(registry: Registry, spec: Definition, method: str | Callable[..., Any]) -> Definition:
    name = method if isinstance(method, str) else getattr(method, "__name__", None)
    found = registry.find(Kind.METHOD, f"{spec.name}.{name}") if isinstance(name, str) else None
    if found is None or (not isinstance(method, str) and found.fn is not method):
        known = ", ".join(
            n.rsplit(".", 1)[1] for n in registry.names(Kind.METHOD) if n.startswith(f"{spec.name}.")
        )
        raise InvalidArgument(f"actor {spec.name!r} has no public method {name!r} (it has: {known})")
    return found


def actor_id(spec: Definition, key: str) -> str:
    check_name("actor key", key)
    return f"{spec.name}/{key}"


# --- references -----------------------------------------------------------------------


class ActorRef(Generic[A]):
    """A reference to the actor of type ``A`` under ``key``: call its methods.

    ``await ref.method(*args)`` runs the method in the actor and returns its result;
    ``await ref.method.enqueue(*args)`` only puts the call in the actor's inbox and
    returns the invocation's id. ``ref.call(Type.method, *args)`` and
    ``ref.enqueue(Type.method, *args)`` do the same with the types of ``Type.method``
    checked statically. In a ``def`` workflow or method the calls block and return
    the values themselves.
    """

    __slots__ = ("_engine", "_registry", "_spec", "key")

    def __init__(self, engine: ActorMethods | None, registry: Registry, spec: Definition, key: str) -> None:
        self._engine = engine
        self._registry = registry
        self._spec = spec
        self.key = key

    @property
    def type(self) -> str:
        """The actor's registered type name."""
        return self._spec.name

    @property
    def id(self) -> str:
        """``type/key``: the actor's id."""
        return actor_id(self._spec, self.key)

    def __getattr__(self, name: str) -> BoundMethod[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)
        return BoundMethod(self, _method(self._registry, self._spec, name))

    @overload
    def call(
        self,
        method: Callable[Concatenate[A, P], Coroutine[Any, Any, R]],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> Awaitable[R]: ...
    @overload
    def call(
        self, method: Callable[Concatenate[A, P], R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[R]: ...

    def call(self, method: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Awaitable[Any]:
        """Call ``method`` (``Type.method``) on this actor and wait for its result."""
        result: Awaitable[Any] = self._invoke(
            _method(self._registry, self._spec, method), args, kwargs, wait=True
        )
        return result

    def enqueue(
        self, method: Callable[Concatenate[A, P], Any], /, *args: P.args, **kwargs: P.kwargs
    ) -> Awaitable[str]:
        """Put a call of ``method`` in the actor's inbox; returns the invocation's id."""
        result: Awaitable[str] = self._invoke(
            _method(self._registry, self._spec, method), args, kwargs, wait=False
        )
        return result

    def _invoke(
        self, method: Definition, args: tuple[Any, ...], kwargs: dict[str, Any], *, wait: bool
    ) -> Any:
        if self._engine is not None:
            if context.activation.get() is not None and context.step_scope.get() is None:
                raise InvalidState(
                    "engine.actor(...) references call from outside; inside a workflow or actor use "
                    "perdure.actor_ref(Type, key) so that the call is recorded and happens once"
                )
            return self._engine._invoke(
                self._spec, self.key, method, args, kwargs, idempotency_key=None, wait=wait
            )
        return _durable_call(self._spec, self.key, method, args, kwargs, wait=wait)

    def __repr__(self) -> str:
        return f"<ActorRef {self._spec.name}/{self.key}>"


class BoundMethod(Generic[P, R]):
    """``ref.method``: call it, or ``.enqueue(...)`` it.

    Typed as the actor's method (its parameters, its result awaitable) by the mypy
    plugin ``perdure.mypy``; without it, ``BoundMethod[..., Any]``.
    """

    __slots__ = ("_method", "_ref")

    def __init__(self, ref: ActorRef[Any], method: Definition) -> None:
        self._ref = ref
        self._method = method

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R]:
        result: Awaitable[R] = self._ref._invoke(self._method, args, kwargs, wait=True)
        return result

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[str]:
        result: Awaitable[str] = self._ref._invoke(self._method, args, kwargs, wait=False)
        return result


def actor_ref(actor_type: type[A], key: str) -> ActorRef[A]:
    """A reference to an actor from inside a workflow or an actor: its calls are recorded
    in the caller's journal and happen exactly once."""
    act = context.require_activation("perdure.actor_ref()")
    spec = _spec(act.rt.registry, actor_type)
    actor_id(spec, key)
    return ActorRef(None, act.rt.registry, spec, key)


def send_actor(actor_type: type[Any] | str, key: str, topic: str, value: Any) -> Awaitable[None]:
    """Send ``value`` to the mailbox of actor ``actor_type``/``key`` on ``topic``, from a
    workflow or an actor, exactly once; ``await`` it in async code.

    A call of the actor takes it with ``perdure.recv(topic)``, in send order; until one
    does, it waits in the mailbox (an actor never called exists from its first message on).
    """
    act = context.require_activation("perdure.send_actor()")
    aid = _mailbox(act.rt.registry, actor_type, key, topic)
    result: Awaitable[None] = messaging.send_actor(act, aid, topic, encode_message(topic, value))
    return result


def _mailbox(registry: Registry, actor_type: type[Any] | str, key: str, topic: str) -> str:
    """The id of the actor whose mailbox a message goes to, checked; ephemeral actors have none."""
    spec = _spec(registry, actor_type)
    aid = actor_id(spec, key)
    check_name("topic", topic)
    if not spec.durable:
        raise InvalidArgument(
            f"actor {spec.name!r} is ephemeral: it has no mailbox to send to; declare it durable "
            "(the default) for its calls to receive messages"
        )
    return aid


def _durable_call(
    spec: Definition,
    key: str,
    method: Definition,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    *,
    wait: bool,
) -> Any:
    act = context.require_activation(f"actor method {method.name!r}")
    data = encode_arguments(method, args, kwargs)
    ret = act.rt.hints(method)[1]
    if not spec.durable:
        if not wait:
            raise InvalidArgument(
                f"actor {spec.name!r} is ephemeral: it has no inbox to enqueue into; call it"
            )
        return act.call_step(act.rt.registry.get(Kind.STEP, method.name), (key, *args), kwargs)
    iid, created = messaging.call_actor(act, method, actor_id(spec, key), data)
    if not act.defn.is_async:
        return messaging.invocation_result(act, method, iid, ret) if wait else iid
    # Both positions are taken now, at the call, so concurrent calls get them in call order.
    outcome = messaging.invocation_result(act, method, iid, ret) if wait else None

    async def run() -> Any:
        await created
        return await outcome if outcome is not None else iid

    return run()


# --- what the Engine offers -------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorInfo:
    """An actor as stored."""

    type: str
    key: str
    status: ActorStatus
    """``busy`` while an invocation is pending, running or waiting; ``idle`` otherwise."""
    invocations: int
    """Invocations ended so far."""
    state_version: int
    """The version of the class that saved its state (0: none saved yet)."""
    created_at: datetime
    updated_at: datetime
    messages: int = 0
    """Messages waiting in its mailbox for a call to ``perdure.recv`` them."""

    @classmethod
    def of(cls, row: ActorRow) -> ActorInfo:
        return cls(type=row.type, key=row.key, status="busy" if row.active else "idle",
                   invocations=row.invocations, state_version=row.state_version, messages=row.pending,
                   created_at=datetime.fromtimestamp(row.created_at, UTC),
                   updated_at=datetime.fromtimestamp(row.updated_at, UTC))  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class ActorPage:
    items: list[ActorInfo]
    cursor: str | None
    """Pass it back for the next page; None when there are no more."""


@dataclass(frozen=True, slots=True, kw_only=True)
class OplogEntry:
    """One invocation of an actor: what was called, what came of it, and when."""

    id: str
    method: str
    status: Status
    arguments: dict[str, Any]
    """The call's arguments by parameter name (plain JSON form)."""
    result: Any
    """The returned value (plain JSON form), once completed."""
    error: ErrorDetails | None
    enqueued_at: datetime
    ended_at: datetime | None
    state_size: int | None
    """Bytes of the state it saved; None if it changed nothing (or has not ended)."""

    @classmethod
    def of(cls, row: OplogRow) -> OplogEntry:
        ended = row.status in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
        err = serializer.decode_error(row.error) if row.error else None
        return cls(
            id=row.id, method=row.method.rsplit(".", 1)[-1], status=row.status,
            arguments=serializer.decode(row.input),
            result=serializer.decode(row.output) if row.output is not None else None,
            error=ErrorDetails(type=err.type, message=err.message, traceback=err.traceback) if err else None,
            enqueued_at=datetime.fromtimestamp(row.created_at, UTC),
            ended_at=datetime.fromtimestamp(row.updated_at, UTC) if ended else None,
            state_size=row.state_size,
        )  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class OplogPage:
    items: list[OplogEntry]
    cursor: str | None


class ActorMethods:
    """Actors: ``Engine`` inherits these."""

    def actor(self: ActorMethods, actor_type: type[A], key: str) -> ActorRef[A]:
        """A reference to the actor ``actor_type`` under ``key`` (it exists once called or sent a message)."""
        core: EngineCore = self  # type: ignore[assignment]
        spec = _spec(core.registry, actor_type)
        actor_id(spec, key)
        return ActorRef(self, core.registry, spec, key)

    async def invoke(
        self,
        actor_type: type[Any] | str,
        key: str,
        method: str,
        /,
        *args: Any,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call ``method`` of actor ``actor_type``/``key`` and return its result.

        ``idempotency_key``: a call repeated with the same key (a client retrying after a
        lost answer) runs once, and returns the first call's result.
        """
        core: EngineCore = self  # type: ignore[assignment]
        spec = _spec(core.registry, actor_type)
        defn = _method(core.registry, spec, method)
        return await self._invoke(spec, key, defn, args, kwargs, idempotency_key=idempotency_key, wait=True)

    async def enqueue(
        self,
        actor_type: type[Any] | str,
        key: str,
        method: str,
        /,
        *args: Any,
        idempotency_key: str | None = None,
        **kwargs: Any,
    ) -> str:
        """Put a call of ``method`` in the actor's inbox and return the invocation's id."""
        core: EngineCore = self  # type: ignore[assignment]
        spec = _spec(core.registry, actor_type)
        defn = _method(core.registry, spec, method)
        iid: str = await self._invoke(
            spec, key, defn, args, kwargs, idempotency_key=idempotency_key, wait=False
        )
        return iid

    async def _invoke(
        self,
        spec: Definition,
        key: str,
        method: Definition,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        idempotency_key: str | None,
        wait: bool,
    ) -> Any:
        core: EngineCore = self  # type: ignore[assignment]
        writer = core._ready()
        aid = actor_id(spec, key)
        data, values = encode_checked(method, args, kwargs)
        if not spec.durable:
            if not wait:
                raise InvalidArgument(
                    f"actor {spec.name!r} is ephemeral: it has no inbox to enqueue into; call it"
                )
            return await _run_ephemeral(spec, key, method, data)
        if idempotency_key is not None:
            check_name("idempotency key", idempotency_key)
        iid = f"{aid}/{idempotency_key if idempotency_key is not None else _call_id()}"
        now = core.clock.now()
        ex = core._executor
        if ex is not None and wait and idempotency_key is None:
            # Most calls find their actor idle: run at once, one commit (see direct.py).
            call = InstanceRow(id=iid, name=method.name, status=Status.PENDING, input=data,
                               created_at=now, updated_at=now, actor_id=aid)  # fmt: skip
            ended = await ex.call_direct(call, values)
            if ended is not None:
                return _outcome(aid, method, ended)
            now = core.clock.now()
        ours = ex is not None and ex.reserve(iid)
        row = InstanceRow(id=iid, name=method.name, status=Status.RUNNING if ours else Status.PENDING,
                          input=data, created_at=now, updated_at=now, wake_at=now,
                          owner=ex.id if ex and ours else None, token=1 if ours else 0, actor_id=aid)  # fmt: skip
        epoch = ex.lease_epoch() if ex is not None else 0  # before the commit: see Executor.run
        try:
            outcome = (await writer.submit((Enqueue(row),)))[0]
        finally:
            if ex is not None and ours:
                ex.unreserve(iid)
        assert isinstance(outcome, EnqueueOutcome)
        stored = outcome.status
        if stored is Status.RUNNING and ex is not None:
            if outcome.actor is not None:
                ex.rt.actors.note(outcome.actor)
            ex.run(row, epoch=epoch, fresh=True)
        elif stored is None:  # the key was used before: the same call, or a conflict
            await _repeated(core, iid, method, data, idempotency_key, epoch)
        elif ex is not None:
            ex.nudge()
        if not wait:
            return iid
        return _outcome(aid, method, await core._wait(iid, None, check=False))

    async def send_actor(
        self,
        actor_type: type[Any] | str,
        key: str,
        topic: str,
        value: Any,
        *,
        idempotency_key: str | None = None,
    ) -> None:
        """Send ``value`` to the mailbox of actor ``actor_type``/``key`` on ``topic``.

        A call of the actor takes it with ``perdure.recv(topic)``, in send order; until one
        does, it waits in the mailbox. An actor never called exists from its first message
        on. Delivered once per ``idempotency_key`` (when given).
        """
        core: EngineCore = self  # type: ignore[assignment]
        writer = core._ready()
        aid = _mailbox(core.registry, actor_type, key, topic)
        message = Message(target=aid, topic=topic, payload=encode_message(topic, value),
                          at=core.clock.now(), sender_key=client_sender_key(idempotency_key))  # fmt: skip
        await writer.submit((Post(message),))
        if core._executor is not None:
            core._executor.nudge()

    async def invocation_result(self, invocation_id: str, *, timeout: float | None = None) -> Any:
        """Wait for the call ``invocation_id`` (what ``enqueue`` returned) to end; return its result.

        For a client that enqueued a call, or whose bounded wait ran out: the call goes on
        in the actor either way. Raises ``ActorCallFailed`` if the method raised,
        ``ResultTimeout`` if it has not ended within ``timeout`` seconds (ask again),
        ``NotFound`` if there is no such call.
        """
        core: EngineCore = self  # type: ignore[assignment]
        core._ready()
        parts = invocation_id.split("/") if isinstance(invocation_id, str) else []
        if len(parts) < 3:  # more when an actor made the call: type/key/<the caller's call id>:<position>
            raise InvalidArgument(
                f"{invocation_id!r} is not an actor call id; pass the 'type/key/call' id enqueue returned"
            )
        for part in parts:
            check_name("each part of an actor call id", part)
        row = await core._store.get_instance(invocation_id)
        if row is None or row.actor_id is None:
            raise NotFound(f"no actor call {invocation_id!r}; ids are what enqueue returns")
        if row.status not in TERMINAL or timeout is not None:  # _wait checks the timeout too
            try:
                row = await core._wait(invocation_id, timeout, check=False)
            except ResultTimeout:
                raise ResultTimeout(f"actor call {invocation_id!r} has not ended after {timeout}s") from None
        method = core.registry.find(Kind.METHOD, row.name)
        return _outcome(row.actor_id or "", method, row)

    async def list_actors(
        self,
        *,
        type: type[Any] | str | None = None,  # noqa: A002 - the actor type
        key_prefix: str | None = None,
        status: ActorStatus | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> ActorPage:
        """Actors ordered by type and key, a page at a time; filter by type, key prefix, status."""
        core: EngineCore = self  # type: ignore[assignment]
        core._ready()
        type_name = None if type is None else _spec(core.registry, type).name
        if key_prefix is not None and not isinstance(key_prefix, str):
            raise InvalidArgument(f"key_prefix must be a str, got {key_prefix!r}")
        if status not in (None, "idle", "busy"):
            raise InvalidArgument(f"status must be 'idle' or 'busy', got {status!r}")
        _check_limit(limit)
        busy = None if status is None else status == "busy"
        page = await core._store.list_actors(
            type=type_name, prefix=key_prefix, busy=busy, limit=limit, cursor=cursor
        )
        return ActorPage(items=[ActorInfo.of(r) for r in page.items], cursor=page.cursor)

    async def actor_state(self, actor_type: type[Any] | str, key: str) -> dict[str, Any]:
        """The actor's attributes as saved after its last call (plain JSON form)."""
        row = await self._actor_row(actor_type, key)
        return {} if row.state is None else dict(serializer.decode(row.state))

    async def actor_info(self, actor_type: type[Any] | str, key: str) -> ActorInfo:
        return ActorInfo.of(await self._actor_row(actor_type, key))

    async def actor_oplog(
        self, actor_type: type[Any] | str, key: str, *, limit: int = 100, cursor: str | None = None
    ) -> OplogPage:
        """The actor's invocations, oldest first: method, arguments, outcome, times, state size."""
        core: EngineCore = self  # type: ignore[assignment]
        row = await self._actor_row(actor_type, key)
        _check_limit(limit)
        page = await core._store.actor_oplog(row.id, limit=limit, cursor=cursor)
        return OplogPage(items=[OplogEntry.of(r) for r in page.items], cursor=page.cursor)

    async def delete_actor(self, actor_type: type[Any] | str, key: str) -> None:
        """Delete the actor, its state, its oplog and its mailbox; ``InvalidState`` while a call is
        in its inbox."""
        core: EngineCore = self  # type: ignore[assignment]
        row = await self._actor_row(actor_type, key)
        deleted = (await core._ready().submit((DeleteActor(row.id),)))[0]
        # None: gone by the time the commit ran (a retried commit whose first attempt deleted
        # it, or another delete meanwhile): deleted either way.
        if deleted is False:
            raise InvalidState(f"actor {row.id!r} has calls in its inbox; delete it once they have ended")

    async def _actor_row(self, actor_type: type[Any] | str, key: str) -> ActorRow:
        core: EngineCore = self  # type: ignore[assignment]
        core._ready()
        aid = actor_id(_spec(core.registry, actor_type), key)
        row = await core._store.get_actor(aid)
        if row is None:
            raise NotFound(
                f"no actor {aid!r}: it exists once a method of it has been called or a message sent to it"
            )
        return row


async def _repeated(
    core: EngineCore, iid: str, method: Definition, data: bytes, key: str | None, epoch: int
) -> None:
    """The invocation ``iid`` existed: the same call (a repeated key, or a retried commit
    whose first attempt landed), or another call under a reused key. ``epoch``: the
    executor's lease epoch before the enqueue commit (see ``Executor.run``)."""
    found = await core._store.get_instance(iid)
    if found is None:  # pragma: no cover - invocations are deleted only with an idle actor
        raise NotFound(f"actor call {iid!r} vanished while being made; make it again")
    if found.name != method.name or found.input != data:
        raise Conflict(
            f"idempotency key {key!r} of actor {found.actor_id!r} was used for another call; "
            "use a new key for a new call"
        )
    if core._executor is not None:
        core._executor.adopt(found, epoch)


def _outcome(aid: str, method: Definition | None, final: InstanceRow) -> Any:
    """The value an ended invocation returned (as the method's annotation says, if it is
    still registered), or its error raised."""
    if final.status is Status.COMPLETED:
        ret = method.hints().get("return", Any) if method is not None else Any
        return serializer.decode_output(final.output, ret, f"call {final.id!r} of actor {aid!r}")
    if final.status is Status.CANCELLED:
        raise WorkflowCancelled(final.id)
    info = serializer.decode_error(final.error) if final.error else serializer.ErrorInfo("unknown", "")
    name = final.name.rsplit(".", 1)[-1]
    raise ActorCallFailed(aid, name, info.type, info.message, info.traceback)


def _check_limit(limit: object) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        raise InvalidArgument(f"limit must be an integer from 1 to 1000, got {limit!r}")


async def _run_ephemeral(spec: Definition, key: str, method: Definition, data: bytes) -> Any:
    """An ephemeral actor's call: a fresh object, the method, nothing saved."""
    values = serializer.decode_input(method.signature, method.hints(), data)
    bound = inspect.BoundArguments(method.signature, values)
    cls: type[Any] = spec.fn  # type: ignore[assignment]
    try:
        with _ephemeral(f"{spec.name}/{key}"):
            if method.is_async:
                return await method.fn(cls(key), *bound.args, **bound.kwargs)
            return await asyncio.to_thread(lambda: method.fn(cls(key), *bound.args, **bound.kwargs))
    except Exception as exc:
        info = serializer.decode_error(serializer.encode_error(exc))
        raise ActorCallFailed(
            f"{spec.name}/{key}", method.method, info.type, info.message, info.traceback
        ) from exc
