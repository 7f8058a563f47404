"""An actor's state, its instance attributes, to bytes and back.

The snapshot is the object's ``__dict__`` as a payload (see ``serializer``), keys
sorted, so an unchanged state encodes to the same bytes. Decoding gives each
attribute the type the class declares for it, at class level (``items: list[Item]``)
or where ``__init__`` or another method assigns it (``self.items: list[Item] = []``);
attributes without an annotation come back as plain JSON values.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
import typing
from typing import Any

import msgspec

from perdure._codec import serializer


def encode(obj: object, where: str) -> bytes:
    """The snapshot of ``obj``; ``TypeError`` naming the first attribute that cannot be encoded."""
    attrs = _attributes(obj, where)
    try:
        return serializer.encode(attrs)
    except (TypeError, OverflowError):
        for name in sorted(attrs):
            try:
                serializer.encode(attrs[name])
            except (TypeError, OverflowError) as exc:
                raise TypeError(
                    f"attribute {name!r} of {where} cannot be saved as state: {exc}; keep JSON-like "
                    "values, dataclasses, msgspec Structs, datetimes, UUIDs or bytes in actor attributes"
                ) from None
        raise


def _attributes(obj: object, where: str) -> dict[str, Any]:
    attrs = getattr(obj, "__dict__", None)
    if not isinstance(attrs, dict):
        raise TypeError(f"{where} has no instance attributes to save (does its class use __slots__?)")
    return attrs


def decode_raw(data: bytes) -> dict[str, Any]:
    """The snapshot's attributes as plain JSON values (what an ``upgrade`` hook receives)."""
    raw = serializer.decode(data)
    if not isinstance(raw, dict):
        raise TypeError(f"an actor state must be an object of attributes, got {type(raw).__name__}")
    return raw


def restore(cls: type[Any], attrs: dict[str, Any]) -> Any:
    """An instance of ``cls`` with ``attrs`` as its attributes, typed as declared; ``__init__`` does not run."""
    types = attribute_types(cls)
    obj = object.__new__(cls)
    values = obj.__dict__
    for name, value in attrs.items():
        hint = types.get(name)
        values[name] = value if hint is None else msgspec.convert(value, hint, strict=False)
    return obj


_types: dict[type[Any], dict[str, Any]] = {}


def attribute_types(cls: type[Any]) -> dict[str, Any]:
    """The declared type of each attribute of ``cls``'s instances that has one (cached)."""
    found = _types.get(cls)
    if found is None:
        found = _types[cls] = _find_types(cls)
    return found


def _find_types(cls: type[Any]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    module = sys.modules.get(cls.__module__)
    env = dict(vars(module)) if module is not None else {}
    env.update(vars(cls))
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        tree = None
    if tree is not None:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Attribute)
                and isinstance(node.target.value, ast.Name)
                and node.target.value.id == "self"
            ):
                hint = _evaluate(node.annotation, env)
                if hint is not None:
                    found[node.target.attr] = hint
    try:
        class_hints = typing.get_type_hints(cls)
    except Exception:  # noqa: BLE001 - an unresolvable annotation decodes as plain JSON
        class_hints = {}
    for name, hint in class_hints.items():
        if typing.get_origin(hint) is not typing.ClassVar:
            found[name] = hint
    return found


def _evaluate(annotation: ast.expr, env: dict[str, Any]) -> Any:
    try:
        expr = ast.Expression(annotation)
        value = eval(compile(expr, "<annotation>", "eval"), env)  # noqa: S307 - the class's own annotation
    except Exception:  # noqa: BLE001 - an unresolvable annotation decodes as plain JSON
        return None
    if isinstance(value, str):  # a quoted annotation
        try:
            return _evaluate(ast.parse(value, mode="eval").body, env)
        except SyntaxError:
            return None
    return value
