"""``perdure.wait_for``: a durable deadline around waits, on the virtual clock.

Every timeout here is days long; the virtual clock makes them pass at once. The
assertions read durable timestamps and journals, never the wall clock.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest

import perdure
import perdure.testing

DAY = timedelta(days=1)
FLAVOURS = pytest.mark.parametrize("flavour", ["async", "def"])


def vengine(db_url: str, registry: perdure.Registry) -> perdure.Engine:
    return perdure.Engine(db_url, registry=registry, poll_interval=0.02, clock=perdure.testing.VirtualClock())


def kinds(history: list[perdure.HistoryEntry]) -> list[str]:
    return [h.kind for h in history]


@FLAVOURS
async def test_a_message_that_never_comes_times_out_and_the_workflow_goes_on(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    if flavour == "async":

        @perdure.workflow(name="approval", registry=registry)
        async def approval_async() -> str:
            try:
                await perdure.wait_for(lambda: perdure.recv("approve"), timeout=2 * DAY)
            except perdure.WaitTimedOut:
                return f"escalated at {perdure.now().isoformat()}"
            return "approved"

        wf: perdure.Workflow[[], str] = approval_async
    else:

        @perdure.workflow(name="approval", registry=registry)
        def approval_def() -> str:
            try:
                perdure.wait_for(lambda: perdure.recv("approve"), timeout=2 * DAY)
            except perdure.WaitTimedOut:
                return f"escalated at {perdure.now().isoformat()}"
            return "approved"

        wf = approval_def

    async with vengine(db_url, registry) as engine:
        started = engine.clock.now()
        handle = await engine.start(wf)
        result = await handle.result(timeout=30)
        history = await handle.history()
    assert result.startswith("escalated")
    assert kinds(history) == ["deadline", "timeout", "now"]
    deadline = history[0].result
    assert deadline == pytest.approx(started + 2 * 86400, abs=1.0)
    timed_out_at = datetime.fromisoformat(history[2].result).timestamp()
    assert timed_out_at >= deadline - 1e-3  # not before the deadline


async def test_what_comes_before_the_deadline_is_returned(db_url: str, registry: perdure.Registry) -> None:
    @perdure.workflow(registry=registry)
    async def ask() -> object:
        return await perdure.wait_for(lambda: perdure.recv("answer"), timeout=DAY)

    async with perdure.Engine(db_url, registry=registry, poll_interval=0.02) as engine:
        handle = await engine.start(ask)
        await handle.send("answer", {"yes": True})
        assert await handle.result(timeout=30) == {"yes": True}
        assert kinds(await handle.history()) == ["deadline", "recv"]


async def test_a_sleep_longer_than_the_timeout_is_cut_short_the_same_way_on_replay(
    db_url: str, registry: perdure.Registry, tmp_path: Path
) -> None:
    @perdure.workflow(registry=registry)
    async def nap() -> str:
        try:
            await perdure.wait_for(_nap(), timeout=DAY)
        except perdure.WaitTimedOut as exc:
            return f"woken after {exc.timeout / 86400:.0f} day"
        return "slept"

    async def _nap() -> None:
        await perdure.sleep(10 * DAY)

    clock = perdure.testing.VirtualClock()
    async with perdure.Engine(db_url, registry=registry, poll_interval=0.02, clock=clock) as engine:
        started = clock.now()
        handle = await engine.start(nap)
        assert await handle.result(timeout=30) == "woken after 1 day"
        history = await handle.history()
        assert kinds(history) == ["deadline", "sleep", "timeout"]
        assert clock.now() < started + 2 * 86400  # it did not sleep the 10 days
        # A read-only replay (a query) walks the same journal without a mismatch.
        with pytest.raises(perdure.InvalidArgument, match="no query"):
            await handle.query("nothing")


async def test_the_wait_for_a_child_is_bounded_and_a_restart_keeps_the_deadline(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def slow_child() -> str:
        await perdure.recv("never")  # nobody sends it: the child cannot end first
        return "late"

    @perdure.workflow(registry=registry)
    async def parent() -> str:
        child = await perdure.start_child(slow_child, parent_close="abandon")
        try:
            return await perdure.wait_for(lambda: child.result(), timeout=DAY)
        except perdure.WaitTimedOut:
            return "gave up"

    # The first engine runs it until it waits (unloaded: status waiting), then stops; a
    # restart on the virtual clock reaches the recorded deadline and times out there.
    async with perdure.Engine(db_url, registry=registry, poll_interval=0.02, unload_after=0.05) as first:
        handle = await first.start(parent, id="parent")
        for _ in range(500):
            if (await handle.status()) is perdure.Status.WAITING and len(await handle.history()) == 2:
                break
            await asyncio.sleep(0.01)
        assert kinds(await handle.history()) == ["child", "deadline"]
    clock = perdure.testing.VirtualClock()
    async with perdure.Engine(db_url, registry=registry, poll_interval=0.02, clock=clock) as engine:
        assert await (await engine.get("parent")).result(timeout=30) == "gave up"
        history = await engine.history("parent")
    assert kinds(history) == ["child", "deadline", "timeout"]


async def test_a_step_retrying_past_the_deadline_stops_at_its_backoff(
    db_url: str, registry: perdure.Registry
) -> None:
    attempts: list[int] = []

    @perdure.step(
        registry=registry,
        retry=perdure.RetryPolicy(max_attempts=10, initial_interval=3600.0, backoff=1.0, max_interval=3600.0),
    )
    def flaky() -> str:
        attempts.append(1)
        raise ConnectionError("down")

    @perdure.workflow(registry=registry)
    async def call() -> str:
        try:
            return await perdure.wait_for(lambda: flaky(), timeout=timedelta(hours=2, minutes=30))
        except perdure.WaitTimedOut:
            return f"gave up after {len(attempts)} attempts"

    async with vengine(db_url, registry) as engine:
        handle = await engine.start(call)
        assert await handle.result(timeout=30) == "gave up after 3 attempts"  # at 0 h, 1 h, 2 h
        assert kinds(await handle.history()) == ["deadline", "timeout"]


async def test_an_outer_deadline_that_comes_first_is_the_one_that_fires(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def nested() -> str:
        async def inner() -> str:
            try:
                await perdure.wait_for(lambda: perdure.recv("x"), timeout=3 * DAY)
            except perdure.WaitTimedOut:
                return "inner"
            return "message"

        try:
            return await perdure.wait_for(inner(), timeout=DAY)
        except perdure.WaitTimedOut as exc:
            return f"outer {exc.timeout / 86400:.0f}"

    async with vengine(db_url, registry) as engine:
        handle = await engine.start(nested)
        assert await handle.result(timeout=30) == "outer 1"


async def test_bad_calls_are_refused_with_the_fix(db_url: str, registry: perdure.Registry) -> None:
    @perdure.workflow(registry=registry)
    async def misuse(case: str) -> str:
        try:
            if case == "started":
                await perdure.wait_for(perdure.recv("x"), timeout=1)
            elif case == "negative":
                await perdure.wait_for(lambda: perdure.recv("x"), timeout=-1)
            else:
                await perdure.wait_for(42, timeout=1)  # type: ignore[arg-type]
        except perdure.InvalidArgument as exc:
            return str(exc)
        return "accepted"

    async with perdure.Engine(db_url, registry=registry, poll_interval=0.02) as engine:
        started = await (await engine.start(misuse, "started")).result(timeout=30)
        assert "pass a function" in started
        negative = await (await engine.start(misuse, "negative")).result(timeout=30)
        assert ">= 0" in negative
        other = await (await engine.start(misuse, "other")).result(timeout=30)
        assert "awaitable or a function" in other
    with pytest.raises(perdure.OutsideWorkflow):
        perdure.wait_for(lambda: None, timeout=1)
