"""Binding call arguments: the short path for plain positional calls gives what
``Signature.bind`` gives, and every other shape still goes through it."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from perdure._api.ops import _bind


def plain(a: int, b: str) -> None: ...
def defaults(a: int, b: int = 2) -> None: ...
def keyword_only(a: int, *, b: int) -> None: ...
def variadic(a: int, *rest: int, **named: int) -> None: ...
def positional_only(a: int, /, b: int) -> None: ...


CALLS: list[tuple[Any, tuple[Any, ...], dict[str, Any]]] = [
    (plain, (1, "x"), {}),
    (plain, (1,), {"b": "x"}),
    (plain, (), {"a": 1, "b": "x"}),
    (defaults, (1,), {}),
    (defaults, (1, 3), {}),
    (keyword_only, (1,), {"b": 2}),
    (variadic, (1, 2, 3), {"c": 4}),
    (positional_only, (1, 2), {}),
]


@pytest.mark.parametrize(("fn", "args", "kwargs"), CALLS)
def test_binding_gives_what_signature_bind_gives(
    fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    sig = inspect.signature(fn)
    bound = _bind(sig, args, kwargs)
    assert bound == sig.bind(*args, **kwargs).arguments
    assert list(bound) == list(sig.bind(*args, **kwargs).arguments)  # same order too


@pytest.mark.parametrize(
    ("fn", "args", "kwargs"),
    [(plain, (1, "x", 3), {}), (plain, (1,), {}), (plain, (1, "x"), {"c": 3}), (keyword_only, (1, 2), {})],
)
def test_wrong_arguments_are_refused_as_signature_bind_refuses_them(
    fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    with pytest.raises(TypeError):
        _bind(inspect.signature(fn), args, kwargs)
