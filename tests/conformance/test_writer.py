"""The group-commit writer on each store: a caller alone on the loop commits in its own task
(``Writer.write``), a lone caller among other work ends up doing so, callers writing at the
same time keep sharing the writer's commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import pytest

from conformance.test_store import entry, running
from perdure._journal.writer import Writer
from perdure._model.records import Append, AppendOutcome, Op, Outcome
from perdure._store.protocol import Store


class Watched:
    """A store that notes, for each commit, the task that made it and how many operations
    it carried; everything else goes to ``inner``."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.commits: list[tuple[asyncio.Task[Any] | None, int]] = []

    async def commit(self, batch: Sequence[Op]) -> list[Outcome]:
        self.commits.append((asyncio.current_task(), len(batch)))
        return await self.inner.commit(batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@pytest.fixture
async def watched(store: Store) -> Watched:
    return Watched(store)


@pytest.fixture
async def writer(watched: Watched) -> AsyncIterator[Writer]:
    w = Writer(cast(Store, watched))
    w.start()
    yield w
    await w.close()


def step(iid: str, position: int) -> tuple[Append]:
    return (Append(instance_id=iid, token=1, entries=(entry(position),)),)


async def test_a_caller_alone_on_the_loop_commits_in_its_own_task(
    store: Store, watched: Watched, writer: Writer
) -> None:
    # Nothing else is ready to run: nobody can write before this commit is done, so
    # there is nothing to share it with, and the hop to the writer's task would be waste.
    await running(store, "wf-1")
    await asyncio.sleep(0)  # what the setup left ready to run (a cancelled timer, say) runs now
    for position in range(3):
        assert await writer.write(step("wf-1", position), None) == [AppendOutcome(ok=True)]
    me = asyncio.current_task()
    assert [task for task, _ in watched.commits] == [me] * 3
    assert [e.position for e in await store.load_journal("wf-1")] == list(range(3))


async def test_a_caller_the_writer_just_acknowledged_commits_in_its_own_task(
    store: Store, watched: Watched, writer: Writer
) -> None:
    # The writer's task yields after acknowledging, so that the callers it woke can write
    # their next operations into its next batch; that yield is not someone else's work.
    await running(store, "wf-1")
    await asyncio.sleep(0)
    asyncio.get_running_loop().call_soon(lambda: None)  # something else ready to run
    assert await writer.write(step("wf-1", 0), None) == [AppendOutcome(ok=True)]
    assert await writer.write(step("wf-1", 1), None) == [AppendOutcome(ok=True)]
    me = asyncio.current_task()
    tasks = [task for task, _ in watched.commits]
    assert tasks[0] is not me, "with something else ready, the commit goes through the writer's task"
    assert tasks[1] is me


async def test_a_lone_caller_on_a_busy_loop_ends_up_committing_in_its_own_task(
    store: Store, watched: Watched, writer: Writer
) -> None:
    await running(store, "wf-1")
    loop = asyncio.get_running_loop()
    busy = True

    def spin() -> None:  # always something else ready to run
        if busy:
            loop.call_soon(spin)

    spin()
    try:
        caller = object()
        for position in range(20):
            assert await writer.write(step("wf-1", position), caller) == [AppendOutcome(ok=True)]
    finally:
        busy = False
    me = asyncio.current_task()
    tasks = [task for task, _ in watched.commits]
    assert tasks[0] is not me, "the first commits go through the writer's task"
    assert tasks[-1] is me
    assert [e.position for e in await store.load_journal("wf-1")] == list(range(20))


async def test_callers_writing_at_the_same_time_share_the_writers_commits(
    store: Store, watched: Watched, writer: Writer
) -> None:
    await running(store, "wf-1")
    await running(store, "wf-2")

    async def steps(iid: str, first: int) -> None:
        for position in range(first, first + 20):
            assert await writer.write(step(iid, position), iid) == [AppendOutcome(ok=True)]

    await steps("wf-1", 0)  # alone: it commits in its own task by the end
    alone = len(watched.commits)
    await asyncio.gather(steps("wf-1", 20), steps("wf-2", 0))
    together = watched.commits[alone:]
    assert max(size for _, size in together) == 2, "the two callers shared commits"
    assert len({task for task, _ in together[2:]}) == 1, "made by the writer's task"
    assert [e.position for e in await store.load_journal("wf-1")] == list(range(40))
    assert [e.position for e in await store.load_journal("wf-2")] == list(range(20))
