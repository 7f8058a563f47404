"""Executors sharing one database share its shards: each claims the instances of the
shards it leases, one that joins gets its share from the others, and the instances the
others were running in the shards they gave up move to it without a step running twice."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import perdure
from perdure._model.records import SHARDS, InstanceRow, Status, shard_of

from .waiting import eventually


def engine(db_url: str, reg: perdure.Registry) -> perdure.Engine:
    """An engine whose executor beats every 0.2 s: shares settle within a second."""
    return perdure.Engine(db_url, registry=reg, lease_ttl=0.6, poll_interval=0.05)


async def shares(*engines: perdure.Engine) -> list[int]:
    """How many shards each engine's executor leases, fewest first."""
    return sorted(e.executor_stats["shards"] for e in engines)


async def steps_ran(ran: list[tuple[str, str, int]]) -> int:
    return len(ran)


async def test_executors_share_the_shards_out_evenly_and_take_a_stopped_ones(db_url: str) -> None:
    reg = perdure.Registry()
    async with engine(db_url, reg) as a:
        assert a.executor_stats["shards"] == SHARDS, "the only executor leases every shard"
        async with engine(db_url, reg) as b:
            await eventually(lambda: shares(a, b), lambda s: s == [32, 32], what="halves")
            async with engine(db_url, reg) as c:
                await eventually(lambda: shares(a, b, c), lambda s: s == [20, 22, 22], what="thirds")
                listed = {e.id: e for e in await c.executors()}
                assert sorted((e.alive, e.shards) for e in listed.values()) == [
                    (True, 20), (True, 22), (True, 22),
                ]  # fmt: skip
                assert all(e.pid == os.getpid() for e in listed.values())
        # b and c stopped and freed their shards: a takes them all at its next beat.
        await eventually(lambda: shares(a), lambda s: s == [SHARDS], what="all back")
        after = {e.id: (e.alive, e.shards) for e in await a.executors()}
        assert sorted(after.values()) == [(False, 0), (False, 0), (True, SHARDS)]
        assert after.keys() == listed.keys()


def slow_workflow(tag: str, ran: list[tuple[str, str, int]]) -> tuple[perdure.Registry, Any]:
    """A registry whose ``chain`` workflow runs ``steps`` steps, each noting (tag, workflow, n)."""
    reg = perdure.Registry()

    @perdure.step(registry=reg, name="tick")
    async def tick(wid: str, n: int) -> int:
        ran.append((tag, wid, n))
        await asyncio.sleep(0.01)
        return n

    @perdure.workflow(registry=reg, name="chain")
    async def chain(wid: str, steps: int) -> int:
        total = 0
        for n in range(steps):
            total += await tick(wid, n)
        return total

    return reg, chain


async def test_an_executor_that_joins_takes_over_running_instances_of_its_shards(db_url: str) -> None:
    ran: list[tuple[str, str, int]] = []
    reg_a, chain = slow_workflow("a", ran)
    reg_b, _ = slow_workflow("b", ran)
    workflows, steps = 16, 30
    async with engine(db_url, reg_a) as a:
        handles = [await a.start(chain, f"w{i}", steps, id=f"w{i}") for i in range(workflows)]
        await eventually(lambda: steps_ran(ran), lambda n: n >= workflows, what="a running")
        async with engine(db_url, reg_b) as b:
            # a gives up half its shards; its instances in them unload at their next step, and
            # b, which leases those shards now, claims and finishes them.
            results = [await h.result(timeout=60) for h in handles]
            assert await shares(a, b) == [32, 32]
    assert results == [sum(range(steps))] * workflows
    by_step: dict[tuple[str, int], list[str]] = {}
    for tag, wid, n in ran:
        by_step.setdefault((wid, n), []).append(tag)
    assert len(by_step) == workflows * steps
    twice = {k: v for k, v in by_step.items() if len(v) > 1}
    assert not twice, f"steps ran more than once: {twice}"
    moved = {wid for tag, wid, _ in ran if tag == "b"}
    assert moved, "b ran none of a's instances"
    assert all(any(t == "a" and w == wid for t, w, _ in ran) for wid in moved), "b took over running ones"


async def test_work_its_shards_executor_has_no_room_for_is_run_by_another(db_url: str) -> None:
    reg = perdure.Registry()
    release = asyncio.Event()

    @perdure.step(registry=reg)
    async def hold() -> str:
        await release.wait()
        return "held"

    @perdure.workflow(registry=reg)
    async def blocker() -> str:
        return await hold()

    @perdure.workflow(registry=reg)
    async def quick(n: int) -> int:
        return n

    full = perdure.Engine(db_url, registry=reg, lease_ttl=0.6, poll_interval=0.05, max_active=1)
    async with full as a:
        held = await a.start(blocker, id="blocker")  # a's only slot, until released
        async with engine(db_url, reg) as b, perdure.Engine(db_url, registry=reg, executor=False) as client:
            await eventually(lambda: shares(a, b), lambda s: s == [32, 32], what="halves")
            # b took the highest half (LeaseShards: each one's highest first); a keeps 0-31.
            ids = [f"q{n}" for n in range(16)]
            in_a = [i for i in ids if shard_of(InstanceRow(id=i, name="quick", status=Status.PENDING, input=b"",
                                                           created_at=0, updated_at=0)) < 32]  # fmt: skip
            assert in_a, "no instance in a's shards: pick other ids"
            handles = [await client.start(quick, n, id=i) for n, i in enumerate(ids)]
            # Those in a's shards wait for a, which has no room: b runs them once they are overdue.
            assert [await h.result(timeout=30) for h in handles] == list(range(16))
            assert (await held.status()) is Status.RUNNING
        release.set()
        assert await held.result(timeout=10) == "held"
