"""The same behaviour through the synchronous facade: ``with perdure.Engine(...) as engine``."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

import perdure

from .waiting import eventually_sync


@dataclass(frozen=True)
class Invoice:
    number: int
    issued: datetime


def test_a_def_workflow_runs_def_and_async_steps_from_sync_code(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.step(registry=registry)
    def number(order: str) -> int:
        return len(order)

    @perdure.step(registry=registry)
    async def issue(n: int) -> Invoice:
        await asyncio.sleep(0)
        return Invoice(number=n, issued=datetime(2031, 5, 6, tzinfo=UTC))

    @perdure.workflow(registry=registry)
    def invoice(order: str) -> Invoice:
        # A def workflow gets each step's value itself.
        return issue(number(order))

    with perdure.Engine(db_url, registry=registry) as engine:
        assert isinstance(engine, perdure.SyncEngine)
        handle = engine.start(invoice, "order-abc", id="inv-1")
        assert isinstance(handle, perdure.SyncHandle)
        result = handle.result(timeout=10)
        assert handle.status() is perdure.Status.COMPLETED
        history = handle.history()
        assert engine.result("inv-1", timeout=10) == result
        assert engine.info("inv-1").status is perdure.Status.COMPLETED

    assert result == Invoice(number=9, issued=datetime(2031, 5, 6, tzinfo=UTC))
    assert [(e.position, e.name) for e in history] == [(0, number.name), (1, issue.name)]


def test_an_async_workflow_runs_under_the_sync_engine(db_url: str, registry: perdure.Registry) -> None:
    @perdure.step(registry=registry)
    def twice(n: int) -> int:
        return 2 * n

    @perdure.workflow(registry=registry)
    async def compute(n: int) -> list[int]:
        return list(await asyncio.gather(twice(n), twice(n + 1)))

    with perdure.Engine(db_url, registry=registry) as engine:
        assert engine.start(compute, 5).result(timeout=10) == [10, 12]


def test_sync_start_is_idempotent_and_conflicts_on_other_arguments(
    db_url: str, registry: perdure.Registry
) -> None:
    runs: list[int] = []

    @perdure.step(registry=registry)
    def charge(amount: int) -> int:
        runs.append(amount)
        return amount

    @perdure.workflow(registry=registry)
    def checkout(amount: int) -> int:
        return charge(amount)

    with perdure.Engine(db_url, registry=registry) as engine:
        first = engine.start(checkout, 3, id="order-1")
        assert first.result(timeout=10) == 3
        assert engine.start(checkout, 3, id="order-1").id == "order-1"
        with pytest.raises(perdure.Conflict):
            engine.start(checkout, 4, id="order-1")
        assert engine.get("order-1").result(timeout=10) == 3
    assert runs == [3]


def test_sync_result_raises_workflow_failed_with_details(db_url: str, registry: perdure.Registry) -> None:
    @perdure.workflow(registry=registry)
    def explode() -> None:
        raise LookupError("no such customer")

    with perdure.Engine(db_url, registry=registry) as engine:
        handle = engine.start(explode)
        with pytest.raises(perdure.WorkflowFailed) as failed:
            handle.result(timeout=10)
        info = handle.info()
    assert (failed.value.error_type, failed.value.message) == ("LookupError", "no such customer")
    assert "in explode" in failed.value.traceback
    assert info.error is not None
    assert info.error.type == "LookupError"


def test_sync_list_filters_and_pages(db_url: str, registry: perdure.Registry) -> None:
    @perdure.workflow(name="echo", registry=registry)
    def echo(n: int) -> int:
        return n

    with perdure.Engine(db_url, registry=registry) as engine:
        for n in range(5):
            engine.start(echo, n, id=f"echo-{n}").result(timeout=10)
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = engine.list(name="echo", status="completed", limit=2, cursor=cursor)
            assert len(page.items) <= 2
            seen += [i.id for i in page.items]
            cursor = page.cursor
            if cursor is None:
                break
        assert seen == [f"echo-{n}" for n in reversed(range(5))]
        assert engine.list(status=perdure.Status.FAILED).items == []
        with pytest.raises(perdure.InvalidArgument, match="limit"):
            engine.list(limit=0)


def test_sync_cancel_of_a_running_workflow(db_url: str, registry: perdure.Registry) -> None:
    entered = threading.Event()
    proceed = threading.Event()

    @perdure.step(registry=registry)
    def wait_a_bit() -> None:
        entered.set()
        proceed.wait(10)

    @perdure.step(registry=registry)
    def never() -> None:
        raise AssertionError("ran after the cancellation")

    @perdure.workflow(registry=registry)
    def flow() -> None:
        wait_a_bit()
        never()

    with perdure.Engine(db_url, registry=registry) as engine:
        handle = engine.start(flow)
        assert entered.wait(10)
        assert handle.cancel() is perdure.Status.RUNNING
        proceed.set()
        with pytest.raises(perdure.WorkflowCancelled):
            handle.result(timeout=10)
        assert handle.status() is perdure.Status.CANCELLED


def test_a_graceful_close_records_the_running_step_and_the_next_engine_goes_on(
    db_url: str, registry: perdure.Registry
) -> None:
    entered = threading.Event()
    proceed = threading.Event()
    runs: list[str] = []

    @perdure.step(registry=registry)
    def first() -> str:
        runs.append("first")
        entered.set()
        proceed.wait(10)
        return "one"

    @perdure.step(registry=registry)
    def second() -> str:
        runs.append("second")
        return "two"

    @perdure.workflow(registry=registry)
    def flow() -> list[str]:
        return [first(), second()]

    with perdure.Engine(db_url, registry=registry) as engine:
        engine.start(flow, id="flow-1")
        assert entered.wait(10)
        threading.Timer(0.2, proceed.set).start()
        engine.close(grace=10)  # the step in flight finishes and is recorded; nothing new starts
        with pytest.raises(perdure.InvalidState, match="closed"):
            engine.list()
    assert runs == ["first"]

    with perdure.Engine(db_url, registry=registry) as engine:
        assert engine.get("flow-1").result(timeout=10) == ["one", "two"]
        history = engine.history("flow-1")
    assert [e.name for e in history] == [first.name, second.name]
    assert runs == ["first", "second"], "the recorded step was not run again"


def test_sync_resume_of_a_parked_workflow(db_url: str) -> None:
    entered = threading.Event()
    proceed = threading.Event()
    v1, v2 = perdure.Registry(), perdure.Registry()

    @perdure.step(name="a", registry=v1)
    def a() -> str:
        return "a"

    @perdure.step(name="b", registry=v1)
    def b() -> str:
        entered.set()
        proceed.wait(10)
        return "b"

    @perdure.step(name="c", registry=v1)
    def c() -> str:
        return "c"

    @perdure.workflow(name="flow", registry=v1)
    def flow_v1() -> str:
        return a() + b() + c()

    @perdure.workflow(name="flow", registry=v2)
    def flow_v2() -> str:
        return b() + a() + c()

    with perdure.Engine(db_url, registry=v1) as engine:
        engine.start(flow_v1, id="flow-1")
        assert entered.wait(10)
        threading.Timer(0.2, proceed.set).start()
        engine.close(grace=10)

    with perdure.Engine(db_url, registry=v2) as engine:
        info = eventually_sync(
            lambda: engine.info("flow-1"), lambda i: i.status is perdure.Status.PARKED, what="flow-1 parked"
        )
        assert info.park_reason is not None
        assert "position 0" in info.park_reason
        assert [e.name for e in engine.history("flow-1")] == ["a", "b"]

    with perdure.Engine(db_url, registry=v1) as engine:
        engine.resume("flow-1")
        assert engine.get("flow-1").result(timeout=10) == "abc"
