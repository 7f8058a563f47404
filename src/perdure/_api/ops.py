"""Durable operations called from workflow code: deterministic helpers and keys.

Each takes a journal position: the first run records its value, replay returns
the recorded one, so code that branches on them replays the same way.
"""

from __future__ import annotations

import random as _random
import uuid as _uuid
from datetime import UTC, datetime

from perdure._model.errors import OutsideWorkflow
from perdure._runtime import context


def now() -> datetime:
    """The current time (UTC, timezone-aware), recorded: replay returns the same instant."""
    act = context.require_activation("perdure.now()")
    return act.record("now", lambda: datetime.fromtimestamp(act.rt.clock.now(), UTC), datetime)


def random() -> float:
    """A float in [0, 1), recorded: replay returns the same number."""
    act = context.require_activation("perdure.random()")
    return act.record("random", _random.random, float)


def uuid4() -> _uuid.UUID:
    """A random UUID, recorded: replay returns the same one."""
    act = context.require_activation("perdure.uuid4()")
    return act.record("uuid4", _uuid.uuid4, _uuid.UUID)


def idempotency_key() -> str:
    """A key unique to the running step and the same for all its attempts, anywhere.

    Pass it to external APIs so that a step re-run after a crash is recognised.
    """
    key = context.step_scope.get()
    if key is None:
        raise OutsideWorkflow(
            "perdure.idempotency_key() was called outside a step; call it inside a "
            "@perdure.step function, where it names that step's execution"
        )
    return key
