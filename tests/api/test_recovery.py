"""An instance interrupted in one Engine is recovered by the next: replay, non-determinism, resume.

To interrupt an instance, a step blocks on an event in the first engine, which
is then closed with a short grace: the instance is released unfinished, and the
next engine on the same database picks it up and replays it from the top.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime

import perdure

from .waiting import eventually


async def test_now_random_and_uuid4_replay_their_recorded_values(
    db_url: str, registry: perdure.Registry
) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()
    drawn: list[tuple[datetime, float, uuid.UUID]] = []

    @perdure.step(registry=registry)
    async def hold() -> None:
        entered.set()
        await gate.wait()

    @perdure.workflow(registry=registry)
    async def lottery() -> tuple[datetime, float, uuid.UUID]:
        values = (perdure.now(), perdure.random(), perdure.uuid4())
        drawn.append(values)  # on every run of the code, replays included
        await hold()
        return values

    async with perdure.Engine(db_url, registry=registry) as first:
        await first.start(lottery, id="lottery-1")
        await asyncio.wait_for(entered.wait(), 10)
        await first.close(grace=0.1)

    gate.set()
    async with perdure.Engine(db_url, registry=registry) as second:
        result = await (await second.get("lottery-1")).result(timeout=10)
        history = await second.history("lottery-1")

    assert len(drawn) == 2, "the second engine ran the code again from the top"
    assert drawn[0] == drawn[1] == tuple(result)
    assert [e.kind for e in history] == ["now", "random", "uuid4", "step"]


async def test_a_replay_that_reorders_steps_parks_writing_nothing_and_resumes_after_a_fix(
    db_url: str,
) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()
    runs: list[str] = []
    ship_keys: list[str] = []
    steps = perdure.Registry()

    @perdure.step(name="reserve", registry=steps)
    async def reserve() -> str:
        runs.append("reserve")
        return "reserved"

    @perdure.step(name="charge", registry=steps)
    async def charge() -> str:
        runs.append("charge")
        return "charged"

    @perdure.step(name="ship", registry=steps)
    async def ship() -> str:
        runs.append("ship")
        ship_keys.append(perdure.idempotency_key())
        entered.set()
        await gate.wait()
        return "shipped"

    v1 = perdure.Registry()

    @perdure.workflow(name="order", registry=v1)
    async def order_v1() -> list[str]:
        return [await reserve(), await charge(), await ship()]

    async with perdure.Engine(db_url, registry=v1) as engine:
        await engine.start(order_v1, id="order-1")
        await asyncio.wait_for(entered.wait(), 10)
        recorded = await engine.history("order-1")
        await engine.close(grace=0.1)
    assert [e.name for e in recorded] == ["reserve", "charge"]

    # A bad deploy: the same workflow name now charges before it reserves.
    bad = perdure.Registry()

    @perdure.workflow(name="order", registry=bad)
    async def order_bad() -> list[str]:
        return [await charge(), await reserve(), await ship()]

    async with perdure.Engine(db_url, registry=bad) as engine:
        info = await eventually(
            lambda: engine.info("order-1"), lambda i: i.status is perdure.Status.PARKED, what="order-1 parked"
        )
        after = await engine.history("order-1")
    assert info.park_reason is not None
    assert "NonDeterminismError" in info.park_reason
    assert "position 0" in info.park_reason
    assert "'reserve'" in info.park_reason
    assert "'charge'" in info.park_reason
    assert after == recorded, "a mismatched replay writes nothing to the journal"
    assert runs == ["reserve", "charge", "ship"], "no step ran under the bad code"

    # The fix restores the recorded order; resume finishes the instance.
    fixed = perdure.Registry()

    @perdure.workflow(name="order", registry=fixed)
    async def order_fixed() -> list[str]:
        return [await reserve(), await charge(), await ship()]

    gate.set()
    async with perdure.Engine(db_url, registry=fixed) as engine:
        await engine.resume("order-1")
        assert await (await engine.get("order-1")).result(timeout=10) == ["reserved", "charged", "shipped"]
        final = await engine.history("order-1")
        info = await engine.info("order-1")
    assert [(e.position, e.name) for e in final] == [(0, "reserve"), (1, "charge"), (2, "ship")]
    assert final[:2] == recorded
    assert runs == ["reserve", "charge", "ship", "ship"], "recorded steps were not re-run"
    assert ship_keys[0] == ship_keys[1], "a step re-run by another engine keeps its idempotency key"
    assert info.park_reason is None


async def test_a_workflow_missing_from_the_new_code_parks_until_it_is_deployed(
    db_url: str, registry: perdure.Registry
) -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    @perdure.step(registry=registry)
    async def hold() -> str:
        entered.set()
        await gate.wait()
        return "held"

    @perdure.workflow(name="legacy", registry=registry)
    async def legacy() -> str:
        held: str = await hold()
        return held

    async with perdure.Engine(db_url, registry=registry) as engine:
        await engine.start(legacy, id="legacy-1")
        await asyncio.wait_for(entered.wait(), 10)
        await engine.close(grace=0.1)

    async with perdure.Engine(db_url, registry=perdure.Registry()) as engine:
        info = await eventually(
            lambda: engine.info("legacy-1"),
            lambda i: i.status is perdure.Status.PARKED,
            what="legacy-1 parked",
        )
    assert info.park_reason is not None
    assert "'legacy'" in info.park_reason

    gate.set()
    async with perdure.Engine(db_url, registry=registry) as engine:
        await engine.resume("legacy-1")
        assert await (await engine.get("legacy-1")).result(timeout=10) == "held"


async def test_a_long_journal_of_mixed_operations_replays_without_running_a_step_again(
    db_url: str, registry: perdure.Registry
) -> None:
    # Long enough for journal packs (several full runs of positions, then rows), with
    # values, a recorded failure and the helpers' values among the steps.
    n = 700
    gate = asyncio.Event()
    entered = asyncio.Event()
    calls: list[int] = []
    seen: list[list[object]] = []

    @perdure.step(registry=registry)
    async def square(i: int) -> int:
        calls.append(i)
        return i * i

    @perdure.step(registry=registry, retry=perdure.RetryPolicy(max_attempts=1))
    async def refuse(i: int) -> int:
        calls.append(-i)
        raise ValueError(f"no {i}")

    @perdure.step(registry=registry)
    async def hold() -> None:
        entered.set()
        await gate.wait()

    @perdure.workflow(registry=registry)
    async def long(n: int) -> list[object]:
        out: list[object] = []
        for i in range(n):
            if i % 97 == 0:
                try:
                    out.append(await refuse(i))
                except perdure.StepFailed as exc:
                    out.append(f"{exc.attempts}:{exc.message}")
            elif i % 50 == 0:
                out.append(perdure.random())
            else:
                out.append(await square(i))
        seen.append(out)  # on every run of the code, the replay included
        await hold()
        return out

    async with perdure.Engine(db_url, registry=registry) as first:
        await first.start(long, n, id="long-1")
        await asyncio.wait_for(entered.wait(), 30)
        await first.close(grace=0.1)
    ran = sorted(calls)

    gate.set()
    async with perdure.Engine(db_url, registry=registry) as second:
        result = await (await second.get("long-1")).result(timeout=30)

    assert len(seen) == 2
    assert seen[0] == seen[1] == result
    expected = sorted(-i if i % 97 == 0 else i for i in range(n) if i % 97 == 0 or i % 50 != 0)
    assert ran == expected, "the first run ran each step once"
    assert sorted(calls) == expected, "the replay ran a recorded step again"
    assert (result[97], result[3]) == ("1:no 97", 9)
