"""The executor drives at most max_active instances at once; the rest wait their turn."""

from __future__ import annotations

import asyncio

import perdure


async def test_starts_beyond_max_active_wait_as_pending_and_all_finish(
    db_url: str, registry: perdure.Registry
) -> None:
    running = 0
    most = 0

    @perdure.step(registry=registry)
    async def hold(i: int) -> int:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)  # keeps the instance active, in memory
        running -= 1
        return i

    @perdure.workflow(registry=registry)
    async def job(i: int) -> int:
        return await hold(i) + await hold(i)

    async with perdure.Engine(db_url, registry=registry, max_active=3) as engine:
        handles = await asyncio.gather(*(engine.start(job, i) for i in range(12)))
        statuses = {await h.status() for h in handles}
        results = [await h.result(timeout=30) for h in handles]

    assert results == [2 * i for i in range(12)]
    assert 1 <= most <= 3, f"{most} instances ran at once with max_active=3"
    assert perdure.Status.PENDING in statuses or most == 3  # the overflow waited its turn
