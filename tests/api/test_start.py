"""Idempotent start (P7): the same id with the same workflow and arguments is one instance."""

from __future__ import annotations

import asyncio

import pytest

import perdure


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
