"""Failures: of a workflow, of a step after its retries, of a step that runs too long."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

import pytest

import perdure

from .waiting import eventually

FAST = perdure.RetryPolicy(max_attempts=3, initial_interval=0.01, max_interval=0.02)


async def test_a_raising_workflow_fails_with_its_type_message_and_traceback(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def validate(order: int) -> None:
        raise ValueError(f"order {order} has no lines")

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(validate, 7, id="validate-7")
        with pytest.raises(perdure.WorkflowFailed) as failed:
            await handle.result(timeout=10)
        info = await handle.info()

    error = failed.value
    assert (error.workflow_id, error.error_type, error.message) == (
        "validate-7",
        "ValueError",
        "order 7 has no lines",
    )
    assert "in validate" in error.traceback
    assert "raise ValueError" in error.traceback
    assert "ValueError: order 7 has no lines" in str(error)
    assert info.status is perdure.Status.FAILED
    assert info.error is not None
    assert (info.error.type, info.error.message) == ("ValueError", "order 7 has no lines")


async def test_a_step_fails_after_max_attempts_with_every_attempt_recorded(
    db_url: str, registry: perdure.Registry
) -> None:
    attempts: list[float] = []

    @perdure.step(registry=registry, retry=FAST)
    def call_bank() -> str:
        attempts.append(time.monotonic())
        raise ConnectionError(f"bank down (attempt {len(attempts)})")

    @perdure.workflow(registry=registry)
    async def pay() -> str:
        try:
            receipt: str = await call_bank()
            return receipt
        except perdure.StepFailed as exc:
            return f"{exc.step}|{exc.error_type}|{exc.message}|{exc.attempts}"

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(pay)
        outcome = await handle.result(timeout=10)
        (entry,) = await handle.history()

    assert outcome == f"{call_bank.name}|ConnectionError|bank down (attempt 3)|3"
    assert len(attempts) == 3
    assert all(b - a >= 0.005 for a, b in itertools.pairwise(attempts)), "retries back off"
    assert (entry.ok, entry.attempts, entry.result) == (False, 3, None)
    assert entry.error is not None
    assert entry.error.type == "ConnectionError"
    assert "bank down (attempt 3)" in entry.error.message


@pytest.mark.parametrize("flavour", ["async", "def"])
async def test_the_retry_state_of_a_step_goes_when_its_workflow_ends(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    # A step that failed twice, then succeeded: its retry state (attempts, last error, next
    # attempt) is kept until the workflow ends, then dropped with the end's commit.
    calls = 0

    @perdure.step(registry=registry, retry=FAST)
    def flaky() -> int:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("not yet")
        return calls

    if flavour == "async":

        @perdure.workflow(name="patient", registry=registry)
        async def patient_async() -> int:
            return await flaky()

        patient: perdure.Workflow[[], int] = patient_async
    else:

        @perdure.workflow(name="patient", registry=registry)
        def patient_def() -> int:
            return flaky()

        patient = patient_def

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(patient)
        assert await handle.result(timeout=10) == 3
        assert (await engine._store.load_replay(handle.id)).retries == []


async def test_an_uncaught_step_failure_fails_the_workflow(db_url: str, registry: perdure.Registry) -> None:
    @perdure.step(registry=registry, retry=perdure.RetryPolicy(max_attempts=1))
    async def explode() -> None:
        raise RuntimeError("kaboom")

    @perdure.workflow(registry=registry)
    async def run() -> None:
        await explode()

    async with perdure.Engine(db_url, registry=registry) as engine:
        with pytest.raises(perdure.WorkflowFailed) as failed:
            await (await engine.start(run)).result(timeout=10)
    assert failed.value.error_type == "perdure.StepFailed"
    assert "kaboom" in failed.value.message


async def test_a_non_retryable_error_stops_the_step_at_once(db_url: str, registry: perdure.Registry) -> None:
    class CardDeclined(perdure.NonRetryableError):
        pass

    calls: list[int] = []

    @perdure.step(registry=registry, retry=FAST)
    async def charge() -> None:
        calls.append(1)
        raise CardDeclined("insufficient funds")

    @perdure.workflow(registry=registry)
    async def pay() -> tuple[str, int]:
        try:
            await charge()
        except perdure.StepFailed as exc:
            return exc.error_type, exc.attempts
        return "no error", 0

    async with perdure.Engine(db_url, registry=registry) as engine:
        error_type, attempts = await (await engine.start(pay)).result(timeout=10)

    assert calls == [1]
    assert attempts == 1
    assert error_type.endswith("CardDeclined")


async def test_a_policys_non_retryable_types_and_subclasses_stop_the_step_at_once(
    db_url: str, registry: perdure.Registry
) -> None:
    calls: dict[str, int] = {"lookup": 0, "flaky": 0}
    policy = perdure.RetryPolicy(max_attempts=5, initial_interval=0.01, non_retryable=(LookupError,))

    @perdure.step(registry=registry, retry=policy)
    def lookup() -> None:
        calls["lookup"] += 1
        raise KeyError("sku-9")  # a subclass of LookupError

    @perdure.step(registry=registry, retry=policy)
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise OSError("transient")
        return "ok"

    @perdure.workflow(registry=registry)
    async def order() -> tuple[int, bool]:
        try:
            await lookup()
        except perdure.StepFailed as exc:
            return exc.attempts, (await flaky()) == "ok"
        return 0, False

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(order)
        assert await handle.result(timeout=10) == (1, True)
        history = await handle.history()

    assert calls == {"lookup": 1, "flaky": 3}
    assert [e.attempts for e in history] == [1, 3]


async def test_a_step_running_past_its_timeout_is_retried_then_fails(
    db_url: str, registry: perdure.Registry
) -> None:
    started: list[float] = []

    @perdure.step(
        registry=registry, timeout=0.05, retry=perdure.RetryPolicy(max_attempts=2, initial_interval=0.01)
    )
    async def hang() -> str:
        started.append(time.monotonic())
        await asyncio.sleep(30)
        return "never"

    @perdure.workflow(registry=registry)
    async def wait_for_it() -> str:
        result: str = await hang()
        return result

    t0 = time.monotonic()
    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(wait_for_it)
        with pytest.raises(perdure.WorkflowFailed) as failed:
            await handle.result(timeout=10)
        (entry,) = await handle.history()

    assert time.monotonic() - t0 < 5, "the attempts were cut short"
    assert len(started) == 2
    assert failed.value.error_type == "perdure.StepFailed"
    assert (entry.ok, entry.attempts) == (False, 2)
    assert entry.error is not None
    assert entry.error.type == "perdure.StepTimedOut"
    assert "0.05" in entry.error.message


async def test_a_def_step_past_its_timeout_fails_and_its_late_result_is_dropped(
    db_url: str, registry: perdure.Registry
) -> None:
    release = threading.Event()
    finished: list[str] = []

    @perdure.step(registry=registry, timeout=0.05, retry=perdure.RetryPolicy(max_attempts=1))
    def blocking_call() -> str:
        release.wait(10)  # a thread cannot be interrupted: it runs on past the timeout
        finished.append("late")
        return "late result"

    @perdure.workflow(registry=registry)
    async def run() -> str:
        try:
            await blocking_call()
        except perdure.StepFailed as exc:
            return exc.error_type
        return "no timeout"

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(run)
        assert await handle.result(timeout=10) == "perdure.StepTimedOut"
        release.set()
        await eventually(lambda: asyncio.sleep(0, finished), bool, what="the abandoned attempt to return")
        (entry,) = await handle.history()
    assert (entry.ok, entry.attempts) == (False, 1), "the late result changed nothing"
    assert entry.error is not None
    assert entry.error.type == "perdure.StepTimedOut"


async def test_a_timed_out_attempt_that_succeeds_on_retry_completes(
    db_url: str, registry: perdure.Registry
) -> None:
    attempts: list[int] = []

    @perdure.step(
        registry=registry, timeout=0.05, retry=perdure.RetryPolicy(max_attempts=3, initial_interval=0.01)
    )
    async def slow_then_fast() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            await asyncio.sleep(30)
        return len(attempts)

    @perdure.workflow(registry=registry)
    async def run() -> int:
        attempt: int = await slow_then_fast()
        return attempt

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(run)
        assert await handle.result(timeout=10) == 2
        assert [e.attempts for e in await handle.history()] == [2]


async def test_a_step_returning_an_unserializable_value_fails_without_retries(
    db_url: str, registry: perdure.Registry
) -> None:
    calls: list[int] = []

    @perdure.step(registry=registry, retry=FAST)
    async def leak() -> object:
        calls.append(1)
        return object()

    @perdure.workflow(registry=registry)
    async def run() -> None:
        await leak()

    async with perdure.Engine(db_url, registry=registry) as engine:
        with pytest.raises(perdure.WorkflowFailed, match="cannot serialize"):
            await (await engine.start(run)).result(timeout=10)
    assert calls == [1]
