"""Workflows and steps, async and def, through ``async with perdure.Engine``."""

from __future__ import annotations

import asyncio
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import perdure


async def test_an_async_workflow_runs_async_and_def_steps_and_records_each(
    db_url: str, registry: perdure.Registry
) -> None:
    threads: list[str] = []

    @perdure.step(registry=registry)
    async def add(a: int, b: int) -> int:
        return a + b

    @perdure.step(registry=registry)
    def double(n: int) -> int:
        threads.append(threading.current_thread().name)
        return 2 * n

    @perdure.workflow(registry=registry)
    async def compute(x: int) -> int:
        doubled: int = await double(await add(x, 1))
        return doubled

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(compute, 4)
        assert await handle.result(timeout=10) == 10
        assert await handle.status() is perdure.Status.COMPLETED
        history = await handle.history()

    assert [(e.position, e.kind, e.name, e.ok, e.result) for e in history] == [
        (0, "step", add.name, True, 5),
        (1, "step", double.name, True, 10),
    ]
    assert history[0].input == {"args": [4, 1], "kwargs": {}}
    assert all(e.attempts == 1 for e in history)
    assert threads, "the def step ran"
    assert threads[0] != threading.main_thread().name, "def steps run off the event loop"


async def test_a_def_workflow_runs_async_and_def_steps(db_url: str, registry: perdure.Registry) -> None:
    @perdure.step(registry=registry)
    async def greet(name: str) -> str:
        await asyncio.sleep(0)
        return f"hello {name}"

    @perdure.step(registry=registry)
    def shout(text: str) -> str:
        return text.upper()

    @perdure.workflow(registry=registry)
    def welcome(name: str) -> str:
        return shout(greet(name)) + "!"  # a def workflow gets values themselves

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(welcome, "ada")
        assert await handle.result(timeout=10) == "HELLO ADA!"
        assert [(e.position, e.name) for e in await handle.history()] == [(0, greet.name), (1, shout.name)]


async def test_gathered_steps_take_positions_in_call_order_not_completion_order(
    db_url: str, registry: perdure.Registry
) -> None:
    finished: list[str] = []

    @perdure.step(registry=registry)
    async def slow(tag: str) -> str:
        await asyncio.sleep(0.05)
        finished.append(tag)
        return tag

    @perdure.step(registry=registry)
    async def fast(tag: str) -> str:
        finished.append(tag)
        return tag

    @perdure.workflow(registry=registry)
    async def fan_out() -> list[str]:
        return list(await asyncio.gather(slow("s1"), fast("f1"), slow("s2"), fast("f2")))

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(fan_out)
        assert await handle.result(timeout=10) == ["s1", "f1", "s2", "f2"]
        history = await handle.history()

    assert finished[:2] == ["f1", "f2"], "the fast steps finished first"
    assert [(e.position, e.name, e.result) for e in history] == [
        (0, slow.name, "s1"),
        (1, fast.name, "f1"),
        (2, slow.name, "s2"),
        (3, fast.name, "f2"),
    ]


@dataclass(frozen=True)
class Parcel:
    sku: str
    grams: int
    shipped_at: datetime


@dataclass(frozen=True)
class Shipment:
    parcels: list[Parcel]
    tracking: uuid.UUID
    eta: datetime


async def test_dataclass_and_datetime_results_come_back_typed(
    db_url: str, registry: perdure.Registry
) -> None:
    seen_in_workflow: list[object] = []

    @perdure.step(registry=registry)
    async def pack(sku: str, grams: int) -> Parcel:
        return Parcel(sku=sku, grams=grams, shipped_at=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC))

    @perdure.workflow(registry=registry)
    async def ship(skus: list[str], since: datetime) -> Shipment:
        parcels = [await pack(s, 100 * i) for i, s in enumerate(skus)]
        seen_in_workflow.extend([since, parcels[0]])
        return Shipment(parcels=parcels, tracking=uuid.UUID(int=7), eta=since + timedelta(days=2))

    since = datetime(2030, 1, 1, tzinfo=UTC)
    async with perdure.Engine(db_url, registry=registry) as engine:
        shipment = await (await engine.start(ship, ["a", "b"], since)).result(timeout=10)

    assert isinstance(seen_in_workflow[0], datetime)
    assert seen_in_workflow[0] == since
    assert isinstance(seen_in_workflow[1], Parcel)
    assert isinstance(shipment, Shipment)
    assert shipment.tracking == uuid.UUID(int=7)
    assert shipment.eta == datetime(2030, 1, 3, tzinfo=UTC)
    assert shipment.eta.tzinfo is not None
    assert shipment.parcels == [
        Parcel("a", 0, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
        Parcel("b", 100, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ]


async def test_now_random_and_uuid4_are_recorded_in_the_journal(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def draw() -> tuple[datetime, float, uuid.UUID]:
        return perdure.now(), perdure.random(), perdure.uuid4()

    before = datetime.now(UTC)  # noqa: TID251 - the test compares the engine's clock to the wall
    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(draw)
        now, rnd, uid = await handle.result(timeout=10)
        history = await handle.history()

    assert before - timedelta(seconds=1) <= now <= before + timedelta(seconds=30)
    assert now.tzinfo is not None
    assert 0.0 <= rnd < 1.0
    assert isinstance(uid, uuid.UUID)
    assert uid.version == 4
    assert [(e.position, e.kind) for e in history] == [(0, "now"), (1, "random"), (2, "uuid4")]
    assert history[1].result == rnd
    assert history[2].result == str(uid)


async def test_idempotency_key_is_stable_across_retries_and_unique_per_step(
    db_url: str, registry: perdure.Registry
) -> None:
    keys: dict[str, list[str]] = {"flaky": [], "other": []}

    @perdure.step(registry=registry, retry=perdure.RetryPolicy(max_attempts=3, initial_interval=0.01))
    def flaky() -> str:
        keys["flaky"].append(perdure.idempotency_key())
        if len(keys["flaky"]) < 3:
            raise ConnectionError("try again")
        return keys["flaky"][-1]

    @perdure.step(registry=registry)
    async def other() -> str:
        keys["other"].append(perdure.idempotency_key())
        return keys["other"][-1]

    @perdure.workflow(registry=registry)
    async def pay() -> list[str]:
        return [await flaky(), await other(), await other()]

    async with perdure.Engine(db_url, registry=registry) as engine:
        first = await (await engine.start(pay, id="pay-1")).result(timeout=10)
        second = await (await engine.start(pay, id="pay-2")).result(timeout=10)

    assert len(set(keys["flaky"][:3])) == 1, "every attempt of one step sees the same key"
    assert len(set(first)) == 3, "each step (even of the same function) has its own key"
    assert not set(first) & set(second), "keys are unique across workflows"
    assert all(isinstance(k, str) and k for k in first + second)
