"""PostgreSQL only: executors learn of new work from other processes by LISTEN/NOTIFY, not by polling."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

import perdure
from conftest import fresh_schema

from .waiting import eventually


@pytest.fixture
def pg(postgres_url: str) -> str:
    return postgres_url


@pytest.fixture
def long_named_schema(postgres_server: str) -> Iterator[str]:
    """A fresh schema whose name is 62 bytes of UTF-8 (a name holds 63), in fewer characters:
    its wake channel would pass a name's 63 bytes (and every NOTIFY would fail), so it is hashed."""
    schema = f"pt_{uuid.uuid4().hex[:8]}_" + "ß" * 25
    assert len(schema.encode()) == 62
    with fresh_schema(postgres_server, schema) as url:
        yield url


@pytest.mark.parametrize("database", ["pg", "long_named_schema"])
async def test_work_started_elsewhere_runs_at_once_though_polling_is_hourly(
    database: str, request: pytest.FixtureRequest, registry: perdure.Registry
) -> None:
    url: str = request.getfixturevalue(database)

    @perdure.workflow(registry=registry)
    async def hello(name: str) -> str:
        return f"hello {name}"

    async with (
        perdure.Engine(url, registry=registry, poll_interval=3600) as worker,
        perdure.Engine(url, registry=registry, executor=False) as client,
    ):
        for n in range(3):  # the first claim loop has run; each start must wake it again
            handle = await client.start(hello, f"n{n}")
            assert await handle.result(timeout=10) == f"hello n{n}"
        assert worker.executor_stats["activations"] == 3


async def test_a_message_sent_by_a_client_wakes_a_waiting_workflow_at_once(
    pg: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def waiter() -> str:
        value: str = await perdure.recv("go", type=str)
        return value

    async with (
        perdure.Engine(pg, registry=registry, poll_interval=3600, unload_after=0.01) as worker,
        perdure.Engine(pg, registry=registry, executor=False) as client,
    ):
        handle = await worker.start(waiter, id="w")
        await eventually(
            lambda: client.info("w"),
            lambda info: info.status is perdure.Status.WAITING,
            what="the workflow unloaded, waiting for its message",
        )
        await client.send("w", "go", "now")
        assert await handle.result(timeout=10) == "now"


async def test_a_message_sent_to_an_actor_by_a_client_wakes_its_waiting_call_at_once(
    pg: str, registry: perdure.Registry
) -> None:
    @perdure.actor(registry=registry)
    class Door:
        def __init__(self, key: str) -> None:
            self.opened_by = ""

        async def wait_open(self) -> str:
            self.opened_by = await perdure.recv("open", type=str)
            return self.opened_by

    async with (
        perdure.Engine(pg, registry=registry, poll_interval=3600, unload_after=0.01) as worker,
        perdure.Engine(pg, registry=registry, executor=False) as client,
    ):
        call = await worker.enqueue(Door, "d", "wait_open")
        await eventually(
            lambda: client.actor_oplog(Door, "d"),
            lambda page: [e.status for e in page.items] == [perdure.Status.WAITING],
            what="the call unloaded, waiting in the actor's mailbox",
        )
        await client.send_actor(Door, "d", "open", "the client")
        assert await worker.invocation_result(call, timeout=10) == "the client"
