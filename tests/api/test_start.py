"""Idempotent start (P7): the same id with the same workflow and arguments is one instance."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, cast

import pytest

import perdure
from perdure._model.records import CreateInstance, Op, Outcome
from perdure._store.protocol import Store


async def test_starting_an_existing_id_again_returns_it_without_running_it_again(
    db_url: str, registry: perdure.Registry
) -> None:
    charged: list[int] = []
    ran: list[str] = []

    @perdure.step(registry=registry)
    async def charge(amount: int) -> int:
        charged.append(amount)
        return amount

    @perdure.workflow(registry=registry)
    async def checkout(order: str, amount: int) -> str:
        ran.append(order)
        return f"{order}:{await charge(amount)}"

    async with perdure.Engine(db_url, registry=registry) as engine:
        first = await engine.start(checkout, "o-1", 30, id="order-1")
        assert await first.result(timeout=10) == "o-1:30"
        again = await engine.start(checkout, "o-1", amount=30, id="order-1")  # same arguments, bound alike
        assert again.id == first.id == "order-1"
        assert await again.result(timeout=10) == "o-1:30"
        by_name = await engine.start(checkout.name, "o-1", 30, id="order-1")
        assert by_name.id == "order-1"
        listed = await engine.list()

    assert charged == [30]
    assert ran == ["o-1"]
    assert [i.id for i in listed.items] == ["order-1"]


async def test_racing_starts_of_one_id_make_one_instance(db_url: str, registry: perdure.Registry) -> None:
    charged: list[int] = []

    @perdure.step(registry=registry)
    async def charge(amount: int) -> int:
        charged.append(amount)
        return amount

    @perdure.workflow(registry=registry)
    async def checkout(amount: int) -> int:
        charged_amount: int = await charge(amount)
        return charged_amount

    async with (
        perdure.Engine(db_url, registry=registry) as engine,
        perdure.Engine(db_url, registry=registry, executor=False) as client,
    ):
        handles = await asyncio.gather(*(e.start(checkout, 5, id="order-race") for e in [engine, client] * 5))
        assert {h.id for h in handles} == {"order-race"}
        assert [await h.result(timeout=10) for h in handles] == [5] * 10
        assert len((await engine.list()).items) == 1

    assert charged == [5]


async def test_the_same_id_with_other_arguments_is_a_conflict_and_the_original_stays(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def checkout(order: str, amount: int) -> int:
        return amount

    async with perdure.Engine(db_url, registry=registry) as engine:
        await (await engine.start(checkout, "o-1", 30, id="order-1")).result(timeout=10)
        with pytest.raises(perdure.Conflict) as info:
            await engine.start(checkout, "o-1", 31, id="order-1")
        assert "'order-1'" in str(info.value)
        assert "other arguments" in str(info.value)
        assert info.value.http_status == 409
        assert await (await engine.get("order-1")).result(timeout=10) == 30
        history = await engine.history("order-1")
        assert (await engine.info("order-1")).status is perdure.Status.COMPLETED
    assert history == []


async def test_the_same_id_with_another_workflow_is_a_conflict(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def checkout(order: str) -> str:
        return "checkout"

    @perdure.workflow(registry=registry)
    async def refund(order: str) -> str:
        return "refund"

    async with perdure.Engine(db_url, registry=registry) as engine:
        await engine.start(checkout, "o-1", id="order-1")
        with pytest.raises(perdure.Conflict, match=f"workflow '{checkout.name}'"):
            await engine.start(refund, "o-1", id="order-1")
        assert await (await engine.get("order-1")).result(timeout=10) == "checkout"
        assert (await engine.info("order-1")).name == checkout.name


async def test_a_start_without_an_id_gets_a_fresh_one_each_time(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def noop() -> int:
        return 1

    async with perdure.Engine(db_url, registry=registry) as engine:
        a = await engine.start(noop)
        b = await engine.start(noop)
        assert a.id != b.id
        assert await a.result(timeout=10) == 1
        assert await b.result(timeout=10) == 1


async def test_a_client_without_an_executor_starts_work_that_an_executor_runs(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def hello(name: str) -> str:
        return f"hi {name}"

    async with perdure.Engine(db_url, registry=registry, executor=False) as client:
        handle = await client.start(hello, "bo", id="hello-1")
        assert await handle.status() is perdure.Status.PENDING
        with pytest.raises(perdure.ResultTimeout):
            await handle.result(timeout=0.05)
        async with perdure.Engine(db_url, registry=registry, poll_interval=0.05):
            assert await handle.result(timeout=10) == "hi bo"


class HeldAfterStart:
    """The engine's store, but a commit that starts an instance, once it has landed, waits
    for ``gate`` before its caller hears of it (``landed`` says when)."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.landed = asyncio.Event()
        self.gate = asyncio.Event()

    async def commit(self, batch: Sequence[Op]) -> list[Outcome]:
        outcomes = await self.inner.commit(batch)
        if any(isinstance(op, CreateInstance) for op in batch):
            self.landed.set()
            await self.gate.wait()
        return outcomes

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def test_a_start_cancelled_after_its_commit_landed_still_runs_the_workflow(
    db_url: str, registry: perdure.Registry
) -> None:
    # The instance is created already claimed by this executor, to run here at once. If the
    # caller is cancelled (a client gone, a timeout) after the commit landed but before it
    # heard so, no other executor will ever claim it: this one must find out and run it.
    @perdure.workflow(registry=registry)
    async def hello(name: str) -> str:
        return f"hello {name}"

    async with perdure.Engine(db_url, registry=registry) as engine:
        writer = engine._ready()
        held = HeldAfterStart(writer._store)
        writer._store = cast(Store, held)
        start = asyncio.create_task(engine.start(hello, "ada", id="cut-short"))
        await asyncio.wait_for(held.landed.wait(), 10)
        start.cancel()
        with pytest.raises(asyncio.CancelledError):
            await start
        writer._store = held.inner
        held.gate.set()
        handle = await engine.get("cut-short")
        assert await handle.result(timeout=10) == "hello ada"
