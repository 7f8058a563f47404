"""Where durable operations find the instance they belong to: context variables.

``activation`` is set while workflow code runs (in its task, or in its thread for
``def`` workflows); ``step_scope`` while a step's function runs. Operations read
them and say clearly where they may be called when they are unset.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING

from perdure._model.errors import OutsideWorkflow

if TYPE_CHECKING:
    from perdure._runtime.runner import Activation

activation: ContextVar[Activation | None] = ContextVar("perdure_activation", default=None)
step_scope: ContextVar[str | None] = ContextVar("perdure_step_scope", default=None)
"""The idempotency key of the step attempt running here."""
wait_deadline: ContextVar[float | None] = ContextVar("perdure_wait_deadline", default=None)
"""The earliest deadline of the ``perdure.wait_for`` calls the code here runs inside."""
ephemeral_actor: ContextVar[str | None] = ContextVar("perdure_ephemeral_actor", default=None)
"""The id of the ephemeral actor whose method runs here: it has no journal (nor mailbox)."""


def require_activation(operation: str) -> Activation:
    ephemeral = ephemeral_actor.get()
    if ephemeral is not None:
        raise OutsideWorkflow(
            f"{operation} was called in a method of ephemeral actor {ephemeral!r}, which keeps no "
            "journal and no mailbox; declare it with @perdure.actor (durable, the default) to use "
            "durable operations in its methods"
        )
    if step_scope.get() is not None:
        raise OutsideWorkflow(
            f"{operation} was called inside a step; steps are the unit of side effects and "
            "cannot call durable operations: call it from the workflow instead"
        )
    act = activation.get()
    if act is None:
        raise OutsideWorkflow(
            f"{operation} was called outside a workflow; durable operations run only inside "
            "a @perdure.workflow started by an Engine (engine.start(...))"
        )
    return act
