"""Listing instances (filters, pagination) and cancelling them in each state."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

import pytest

import perdure

from .waiting import eventually


async def test_list_filters_by_name_and_status_and_pages_newest_first(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(name="ok", registry=registry)
    async def ok(n: int) -> int:
        return n

    @perdure.workflow(name="bad", registry=registry)
    async def bad(n: int) -> int:
        raise ValueError(n)

    async with perdure.Engine(db_url, registry=registry) as engine:
        started = []
        for n in range(5):
            started.append((await engine.start(ok, n, id=f"ok-{n}")).id)
            if n < 2:
                started.append((await engine.start(bad, n, id=f"bad-{n}")).id)
        for wid in started:
            if wid.startswith("bad"):
                with pytest.raises(perdure.WorkflowFailed):
                    await (await engine.get(wid)).result(timeout=10)
            else:
                await (await engine.get(wid)).result(timeout=10)

        async def ids(**filters: object) -> list[str]:
            return [i.id for i in (await engine.list(**filters)).items]  # type: ignore[arg-type]

        newest_first = started[::-1]
        assert await ids() == newest_first
        assert await ids(name="ok") == [w for w in newest_first if w.startswith("ok")]
        assert await ids(status="failed") == ["bad-1", "bad-0"]
        assert await ids(status=perdure.Status.COMPLETED, name="bad") == []
        assert await ids(status=perdure.Status.COMPLETED, name="ok") == [
            "ok-4",
            "ok-3",
            "ok-2",
            "ok-1",
            "ok-0",
        ]
        assert await ids(name="nobody") == []

        pages: list[list[str]] = []
        cursor: str | None = None
        while True:
            page = await engine.list(limit=3, cursor=cursor)
            pages.append([i.id for i in page.items])
            cursor = page.cursor
            if cursor is None:
                break
        assert pages == [newest_first[0:3], newest_first[3:6], newest_first[6:7]]

        failed = (await engine.list(name="bad", limit=1)).items[0]
        assert failed.status is perdure.Status.FAILED
        assert failed.error is not None
        assert failed.error.type == "ValueError"
        assert failed.created_at.tzinfo is UTC
        assert failed.created_at <= datetime.now(UTC)  # noqa: TID251 - compared to the wall clock


async def test_cancelling_a_running_async_workflow_stops_it_and_lets_finally_clean_up(
    db_url: str, registry: perdure.Registry
) -> None:
    entered = asyncio.Event()
    never = asyncio.Event()
    ran: list[str] = []

    @perdure.step(registry=registry)
    async def wait_for_payment() -> None:
        entered.set()
        await never.wait()

    @perdure.step(registry=registry)
    async def ship() -> None:
        ran.append("ship")

    @perdure.step(registry=registry)
    async def release_stock() -> None:
        ran.append("release_stock")

    @perdure.workflow(registry=registry)
    async def order() -> None:
        try:
            await wait_for_payment()
            await ship()
        finally:
            await release_stock()

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(order)
        await asyncio.wait_for(entered.wait(), 10)
        assert await handle.cancel() is perdure.Status.RUNNING
        with pytest.raises(perdure.WorkflowCancelled, match=repr(handle.id)):
            await handle.result(timeout=10)
        assert await handle.status() is perdure.Status.CANCELLED
        history = await handle.history()

    assert ran == ["release_stock"]
    assert [e.name for e in history] == [release_stock.name]


async def test_cancelling_a_running_def_workflow_stops_it_at_its_next_step(
    db_url: str, registry: perdure.Registry
) -> None:
    entered = threading.Event()
    proceed = threading.Event()
    ran: list[str] = []

    @perdure.step(registry=registry)
    def wait_for_payment() -> str:
        entered.set()
        proceed.wait(10)
        return "paid"

    @perdure.step(registry=registry)
    def ship() -> None:
        ran.append("ship")

    @perdure.workflow(registry=registry)
    def order() -> None:
        wait_for_payment()
        ship()

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(order)
        assert await asyncio.to_thread(entered.wait, 10)
        assert await handle.cancel() is perdure.Status.RUNNING
        proceed.set()
        with pytest.raises(perdure.WorkflowCancelled):
            await handle.result(timeout=10)
        history = await handle.history()

    assert ran == []
    assert [(e.name, e.result) for e in history] == [(wait_for_payment.name, "paid")]


async def test_cancelling_a_pending_workflow_cancels_it_before_it_runs(
    db_url: str, registry: perdure.Registry
) -> None:
    ran: list[int] = []

    @perdure.workflow(registry=registry)
    async def job() -> None:
        ran.append(1)

    async with perdure.Engine(db_url, registry=registry, executor=False) as client:
        handle = await client.start(job, id="job-1")
        assert await handle.cancel() is perdure.Status.CANCELLED
        async with perdure.Engine(db_url, registry=registry, poll_interval=0.05) as worker:
            with pytest.raises(perdure.WorkflowCancelled):
                await (await worker.get("job-1")).result(timeout=10)
        assert await handle.status() is perdure.Status.CANCELLED
    assert ran == []


async def test_cancelling_a_sleeping_workflow_wakes_it_into_the_cancellation(
    db_url: str, registry: perdure.Registry
) -> None:
    ran: list[str] = []

    @perdure.step(registry=registry)
    async def note(what: str) -> None:
        ran.append(what)

    @perdure.workflow(registry=registry)
    async def reminder() -> None:
        try:
            await perdure.sleep(3600)
            await note("reminded")
        finally:
            await note("cleaned up")

    async with perdure.Engine(db_url, registry=registry, unload_after=0.01) as engine:
        handle = await engine.start(reminder)
        await eventually(handle.status, lambda s: s is perdure.Status.WAITING, what="the workflow to sleep")
        await handle.cancel()
        with pytest.raises(perdure.WorkflowCancelled):
            await handle.result(timeout=10)
    assert ran == ["cleaned up"]


async def test_cancelling_an_ended_workflow_changes_nothing(db_url: str, registry: perdure.Registry) -> None:
    @perdure.workflow(registry=registry)
    async def done() -> str:
        return "done"

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(done)
        assert await handle.result(timeout=10) == "done"
        assert await handle.cancel() is perdure.Status.COMPLETED
        assert await handle.result(timeout=10) == "done"
