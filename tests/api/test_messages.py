"""Internal effects happen once per journal position (P3), in send order (P6), faults or not."""

from __future__ import annotations

import pytest

import perdure


async def test_messages_between_workflows_arrive_once_each_in_send_order(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def inbox(expected: int) -> list[int]:
        return [await perdure.recv("numbers", type=int) for _ in range(expected)]

    @perdure.workflow(registry=registry)
    async def producer(target: str, count: int) -> None:
        for n in range(count):
            await perdure.send(target, "numbers", n)

    async with perdure.Engine(db_url, registry=registry) as engine:
        receiver = await engine.start(inbox, 10, id="inbox")
        sender = await engine.start(producer, "inbox", 10)
        await sender.result(timeout=10)
        assert await receiver.result(timeout=10) == list(range(10))
        sent = await sender.history()
        received = await receiver.history()

    assert [(e.position, e.kind, e.name) for e in sent] == [(n, "send", "numbers") for n in range(10)]
    assert [e.result for e in received] == list(range(10))


async def test_a_client_message_with_an_idempotency_key_is_delivered_once(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def collect() -> list[str]:
        first = await perdure.recv("words", type=str)
        second = await perdure.recv("words", type=str)
        return [first, second]

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(collect)
        await handle.send("words", "alpha", idempotency_key="k-1")
        await handle.send("words", "alpha", idempotency_key="k-1")  # a client retrying
        await handle.send("words", "beta", idempotency_key="k-2")
        assert await handle.result(timeout=10) == ["alpha", "beta"]
        assert [e.result for e in await handle.history()] == ["alpha", "beta"]


async def test_an_event_set_by_a_workflow_is_readable_by_clients(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def progress() -> str:
        perdure.set_event("stage", "packing")
        await perdure.recv("go")
        perdure.set_event("stage", "shipped")
        return "done"

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(progress)
        assert await handle.wait_event("stage", timeout=10) == "packing"
        await handle.send("go", None)
        assert await handle.result(timeout=10) == "done"
        assert await handle.get_event("stage") == "shipped"
        assert [e.kind for e in await handle.history()] == ["set_event", "recv", "set_event"]


async def test_sending_to_a_missing_or_ended_workflow_is_refused(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def done() -> None:
        return None

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(done)
        await handle.result(timeout=10)
        with pytest.raises(perdure.NotFound, match="'ghost'"):
            await engine.send("ghost", "t", 1)
        with pytest.raises(perdure.InvalidState, match="completed"):
            await handle.send("t", 1)
