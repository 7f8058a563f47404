"""The attempts of one step, as a pure state machine (sans-I/O).

``attempts`` is a generator that says what to do next and is told what
happened: ``INVOKE`` (answer: ``(True, value)`` or ``(False, exception)``),
``Record(op)`` (commit it; answer: None) and ``WaitUntil(t)``. It returns the
journal entry that ends the step. Two drivers run it: on the event loop for
``async def`` workflows, and inline in a ``def`` workflow's own thread, where
a ``def`` step then runs with no thread hand-off but the commit's.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from perdure._codec import serializer
from perdure._model.definitions import Definition
from perdure._model.records import Append, JournalEntry, RetryState
from perdure._runtime.retry import backoff_delay, should_retry


class _Invoke:
    __slots__ = ()


INVOKE = _Invoke()
"""Run the step's function once; answer ``(True, value)`` or ``(False, exception)``."""


@dataclass(frozen=True, slots=True)
class Record:
    """Commit ``op`` before going on."""

    op: Append


@dataclass(frozen=True, slots=True)
class WaitUntil:
    """Do not go on before ``when`` (epoch seconds)."""

    when: float


Command = _Invoke | Record | WaitUntil


def attempts(
    *,
    step: Definition,
    instance_id: str,
    token: int,
    position: int,
    step_input: bytes | None,
    state: RetryState | None,
    now: Callable[[], float],
) -> Generator[Command, Any, JournalEntry]:
    """Attempt ``step`` until it succeeds or its retry policy gives up.

    ``state``: the retry state recorded by an earlier process, whose count and
    countdown are resumed, not restarted.
    """
    attempt = 0
    if state is not None:
        attempt = state.attempts
        yield WaitUntil(state.next_at)
    while True:
        attempt += 1
        started = now()
        ok, outcome = yield INVOKE
        retryable = True
        if ok:
            try:
                result = serializer.encode(outcome)
            except (TypeError, OverflowError) as exc:
                ok, retryable = False, False  # the same value would fail again
                outcome = TypeError(f"step {step.name!r} returned a value perdure cannot serialize: {exc}")
        ended = now()
        if ok:
            entry = JournalEntry(
                position=position, kind="step", name=step.name, ok=True, result=result,
                input=step_input, attempts=attempt, started_at=started, ended_at=ended,
            )  # fmt: skip
            yield Record(Append(instance_id=instance_id, token=token, entries=(entry,)))
            return entry
        error = serializer.encode_error(outcome)
        if retryable and should_retry(step.retry, attempt, outcome):
            next_at = ended + backoff_delay(step.retry, attempt)
            retry = RetryState(position=position, attempts=attempt, last_error=error, next_at=next_at)
            yield Record(Append(instance_id=instance_id, token=token, retries=(retry,)))
            yield WaitUntil(next_at)
            continue
        entry = JournalEntry(
            position=position, kind="step", name=step.name, ok=False, result=error,
            input=step_input, attempts=attempt, started_at=started, ended_at=ended,
        )  # fmt: skip
        yield Record(Append(instance_id=instance_id, token=token, entries=(entry,)))
        return entry
