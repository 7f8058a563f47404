"""What a decorator records about user code, and the registry that holds it.

One shape (``Definition``) serves workflows, steps, actor classes and actor
methods; its ``kind`` tells them apart. A ``Registry`` maps names to definitions; decorators register into
``default_registry`` unless given another, and an Engine reads the registry it
was handed. Registration is the only side effect of decorating.
"""

from __future__ import annotations

import enum
import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from perdure._model.errors import InvalidArgument, RegistrationError
from perdure._model.policies import DEFAULT_RETRY, RetryPolicy

MAX_NAME_LENGTH = 200


class Kind(enum.StrEnum):
    WORKFLOW = "workflow"
    STEP = "step"
    ACTOR = "actor"
    METHOD = "actor method"
    """A method of an actor class, registered as ``Type.method``."""


def check_name(what: str, name: object) -> str:
    """Validate a registered name or an instance id: printable, bounded, path-safe."""
    if not isinstance(name, str):
        raise InvalidArgument(f"{what} must be a str, got {type(name).__name__}")
    if not name:
        raise InvalidArgument(f"{what} must not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidArgument(f"{what} is {len(name)} characters long; at most {MAX_NAME_LENGTH} are allowed")
    if not name.isprintable():
        raise InvalidArgument(f"{what} {name!r} contains control characters; use printable text")
    if "/" in name or name in {".", ".."}:
        raise InvalidArgument(f"{what} {name!r} must not contain '/' or be '.' or '..'")
    return name


@dataclass(frozen=True, slots=True, kw_only=True)
class Definition:
    """A registered workflow or step."""

    kind: Kind
    """Workflow or step."""
    name: str
    """Registered name; recorded in the journal and matched on replay."""
    fn: Callable[..., Any]
    """The user's function, undecorated."""
    is_async: bool
    """Whether ``fn`` is a coroutine function; decided once, at decoration."""
    retry: RetryPolicy = DEFAULT_RETRY
    """Steps only: how failed attempts are retried."""
    timeout: float | None = None
    """Steps only: seconds one attempt may run; ``None`` for no limit."""
    signature: inspect.Signature = field(repr=False)
    """``fn``'s signature, to check arguments at call time (an actor method's: without ``self``)."""
    actor: str | None = None
    """Actor methods: the registered name of their actor class."""
    durable: bool = True
    """Actor classes: whether instances keep their state (``False``: a fresh one per call)."""
    version: int = 1
    """Actor classes: the version of their state's shape (see ``upgrade``)."""

    def hints(self) -> dict[str, Any]:
        """Type hints of ``fn`` (parameters and ``return``); ``{}`` if unresolvable. Cached."""
        return _hints(self.fn)

    @property
    def method(self) -> str:
        """Actor methods: the method's own name (``add`` of ``Counter.add``)."""
        return self.name.rsplit(".", 1)[-1]


@functools.lru_cache(maxsize=4096)
def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # noqa: BLE001 - unresolvable forward refs decode as plain JSON
        return {}


class Registry:
    """Names to definitions, per kind. Re-registering the same function is allowed."""

    def __init__(self) -> None:
        self._by_kind: dict[Kind, dict[str, Definition]] = {k: {} for k in Kind}

    def add(self, definition: Definition) -> None:
        table = self._by_kind[definition.kind]
        old = table.get(definition.name)
        if old is not None and not _same_code(old.fn, definition.fn):
            raise RegistrationError(
                f"{definition.kind} name {definition.name!r} is already registered by "
                f"{_where(old.fn)}; pass name='...' to the decorator to register "
                f"{_where(definition.fn)} under another name"
            )
        table[definition.name] = definition

    def get(self, kind: Kind, name: str) -> Definition:
        try:
            return self._by_kind[kind][name]
        except KeyError:
            known = ", ".join(sorted(self._by_kind[kind])) or "none"
            raise RegistrationError(
                f"no {kind} named {name!r} is registered (known: {known}); "
                f"decorate it with @perdure.{kind} and import its module"
            ) from None

    def find(self, kind: Kind, name: str) -> Definition | None:
        return self._by_kind[kind].get(name)

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._by_kind[kind])


def _same_code(a: Callable[..., Any], b: Callable[..., Any]) -> bool:
    # A module imported twice (as __main__ and by name) registers the same code twice.
    code_a, code_b = getattr(a, "__code__", None), getattr(b, "__code__", None)
    return a is b or (
        code_a is not None
        and code_b is not None
        and (code_a.co_filename, code_a.co_firstlineno) == (code_b.co_filename, code_b.co_firstlineno)
    )


def _where(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


default_registry = Registry()
