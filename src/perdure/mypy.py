"""A mypy plugin: what Python's type system cannot say about perdure's calls.

1. ``ref.method(...)`` on actor references has the actor's own types. ``ActorRef[A]``
   cannot declare "the methods of ``A``, each returning an awaitable"; this plugin
   tells mypy. ``engine.actor(Cart, "k").add_item(item)`` is checked against
   ``Cart.add_item``'s parameters and typed ``Awaitable`` of its result (``async def``
   methods: of what the coroutine returns); ``.enqueue(...)`` checks the same
   arguments; a misspelt method is an error. On a ``SyncActorRef`` the call returns
   the result itself.
2. In a ``def`` (a ``def`` workflow or actor method), steps, actor calls and the
   durable operations return their values, not awaitables; the plugin types them so.

Enable it with::

    [tool.mypy]
    plugins = ["perdure.mypy"]

Without the plugin ``ref.method(...)`` type-checks as ``Any`` (``ref.call(Cart.add_item,
item)`` is checked by any type checker) and calls in a ``def`` as awaitables.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from mypy.nodes import FuncDef, FuncItem, LambdaExpr
from mypy.plugin import AttributeContext, CheckerPluginInterface, FunctionContext, MethodContext, Plugin
from mypy.typeops import bind_self
from mypy.types import AnyType, CallableType, Instance, Parameters, Type, TypeOfAny, get_proper_type

REFERENCES = {"perdure._api.actors.ActorRef", "perdure._api.sync.SyncActorRef"}
"""The reference classes: their ``__getattr__`` gives ``BoundMethod[..., Any]`` (or
``SyncBoundMethod``), which the plugin fills in with the method's types."""

AWAITED_IN_DEF = {
    *(
        f"perdure._api.ops.{name}"
        for name in ("sleep", "sleep_until", "send", "recv", "wait_for", "start_child")
    ),
    "perdure._api.ops.ChildHandle.result",
    "perdure._api.ops.ChildHandle.send",
    "perdure._api.decorators.Step.__call__",
    "perdure._api.actors.BoundMethod.__call__",
    "perdure._api.actors.BoundMethod.enqueue",
    "perdure._api.actors.ActorRef.call",
    "perdure._api.actors.ActorRef.enqueue",
    "perdure._api.actors.send_actor",
}
"""Calls that return an awaitable in ``async def`` code and the value itself in a ``def``."""


class PerdurePlugin(Plugin):
    def get_attribute_hook(self, fullname: str) -> Callable[[AttributeContext], Type] | None:
        # mypy asks about every attribute that a class with __getattr__ does not define.
        owner, _, name = fullname.rpartition(".")
        if owner not in REFERENCES or name.startswith("_"):
            return None
        return partial(_method_of_actor, name)

    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        return _value_in_def if fullname in AWAITED_IN_DEF else None

    def get_method_hook(self, fullname: str) -> Callable[[MethodContext], Type] | None:
        return _value_in_def if fullname in AWAITED_IN_DEF else None


def _value_in_def(ctx: FunctionContext | MethodContext) -> Type:
    """``Awaitable[T]`` as declared, but ``T`` when called in the body of a ``def``."""
    result = get_proper_type(ctx.default_return_type)
    if not _in_def(ctx.api) or not isinstance(result, Instance) or not result.args:
        return ctx.default_return_type
    if result.type.fullname == "typing.Awaitable":
        return result.args[0]
    if result.type.fullname == "typing.Coroutine":
        return result.args[2]
    return ctx.default_return_type


def _in_def(api: CheckerPluginInterface) -> bool:
    """Is the code being checked in a ``def`` of the user's (not an ``async def``; a lambda
    counts as the function it is written in; perdure's own ``def``s pass awaitables on)?"""
    stack = getattr(getattr(api, "scope", None), "stack", [])
    func = next(
        (f for f in reversed(stack) if isinstance(f, FuncItem) and not isinstance(f, LambdaExpr)), None
    )
    if func is None or func.is_coroutine:
        return False
    return not func.fullname.startswith("perdure.")


def _method_of_actor(name: str, ctx: AttributeContext) -> Type:
    """``BoundMethod[P, R]`` for the actor's method ``name``: its parameters without
    ``self``, and its result (unwrapped from a coroutine)."""
    ref = get_proper_type(ctx.type)
    if not isinstance(ref, Instance) or not ref.args or ref.type.has_readable_member(name):
        return ctx.default_attr_type  # the reference's own attributes (key, type, id)
    actor = get_proper_type(ref.args[0])
    bound = get_proper_type(ctx.default_attr_type)
    if not isinstance(actor, Instance) or not isinstance(bound, Instance):  # ActorRef[Any]
        return ctx.default_attr_type
    node = actor.type.get_method(name)
    if node is None:
        ctx.api.fail(f'Actor "{actor.type.name}" has no method "{name}"', ctx.context)
        return AnyType(TypeOfAny.from_error)
    signature = get_proper_type(node.type) if isinstance(node, FuncDef) else None
    if not isinstance(node, FuncDef) or not isinstance(signature, CallableType):
        return ctx.default_attr_type  # unannotated, overloaded or decorated: unchecked
    method = bind_self(signature, actor)
    result = get_proper_type(method.ret_type)
    if node.is_coroutine and isinstance(result, Instance) and result.type.fullname == "typing.Coroutine":
        result = get_proper_type(result.args[2])
    parameters = Parameters(method.arg_types, method.arg_kinds, method.arg_names)
    return Instance(bound.type, [parameters, result])


def plugin(version: str) -> type[Plugin]:
    """mypy's entry point."""
    return PerdurePlugin
