"""PostgreSQL only: an engine holds at most ``pool_size`` connections, plus one that listens."""

from __future__ import annotations

import asyncio
import uuid

import psycopg

import perdure


async def test_an_engine_never_holds_more_connections_than_its_budget(
    postgres_url: str, postgres_server: str, registry: perdure.Registry
) -> None:
    @perdure.step(registry=registry)
    async def tick(i: int) -> int:
        return i

    @perdure.workflow(registry=registry)
    async def busy(n: int) -> int:
        return sum([await tick(i) for i in range(n)])

    app = f"perdure_budget_{uuid.uuid4().hex[:8]}"
    seen: list[int] = []
    done = asyncio.Event()

    async def sample() -> None:
        async with await psycopg.AsyncConnection.connect(postgres_server, autocommit=True) as conn:
            while not done.is_set():
                cur = await conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app,)
                )
                row = await cur.fetchone()
                seen.append(int(row[0]) if row else 0)
                await asyncio.sleep(0.005)  # sampling while the work runs

    url = f"{postgres_url}&pool_size=2&application_name={app}"
    sampler = asyncio.create_task(sample())
    try:
        async with (
            perdure.Engine(url, registry=registry) as worker,
            perdure.Engine(url, registry=registry, executor=False) as client,
        ):
            handles = [await client.start(busy, 5) for _ in range(40)]
            handles += [await worker.start(busy, 5) for _ in range(40)]
            # Many reads at once: the pool lends its connections in turn, it opens no more.
            infos = await asyncio.gather(*(client.info(h.id) for h in handles for _ in range(3)))
            assert len(infos) == 240
            assert [await h.result(timeout=30) for h in handles] == [10] * 80
    finally:
        done.set()
        await sampler
    assert max(seen) > 0, "the sampler saw the engines' connections"
    assert max(seen) <= 2 * (2 + 1), f"two engines of pool_size=2 held {max(seen)} connections at once"
