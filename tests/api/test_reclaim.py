"""An instance claimed again while its last activation is still finishing is run, not dropped."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

import perdure

from .waiting import eventually


async def test_instances_due_again_as_they_unload_are_all_driven_to_the_end(
    db_url: str, registry: perdure.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every run ends by continuing as new: the instance is due again at once. When that
    # commit's acknowledgement is lost, the retry waits while the first attempt has landed:
    # other instances' ends trigger claims that take it again before its activation is gone.
    monkeypatch.setenv("PERDURE_STORE_FAULTS", "ambiguous=0.2")
    monkeypatch.setenv("PERDURE_SEED", "7")

    @perdure.step(registry=registry)
    async def tick(n: int) -> int:
        return n

    @perdure.workflow(registry=registry)
    async def loop(n: int) -> int:
        await tick(n)
        if n > 0:
            perdure.continue_as_new(n - 1)
        return n

    async with perdure.Engine(db_url, registry=registry, poll_interval=30.0) as engine:
        handles = await asyncio.gather(*(engine.start(loop, 30, id=f"loop-{i}") for i in range(20)))
        # The poll is 30 s: only an activation that is never dropped finishes in time.
        results = await asyncio.gather(*(h.result(timeout=25) for h in handles))
        runs = [(await h.info()).run for h in handles]
    assert results == [0] * 20
    assert runs == [30] * 20


async def test_a_claim_that_arrives_while_the_instance_is_still_active_runs_after_it(
    db_url: str, registry: perdure.Registry
) -> None:
    # Reaches into the executor to deliver the second claim at the worst moment, which
    # otherwise happens only when a commit is retried after a lost acknowledgement.
    gate = asyncio.Event()
    bodies = 0

    @perdure.step(registry=registry)
    async def hold() -> int:
        nonlocal bodies
        bodies += 1
        await gate.wait()
        return 1

    @perdure.workflow(registry=registry)
    async def held() -> int:
        return await hold()

    async with perdure.Engine(db_url, registry=registry, poll_interval=30.0) as engine:
        handle = await engine.start(held, id="held")
        executor = engine._executor
        assert executor is not None

        async def loaded() -> bool:
            return executor.local("held") is not None

        await eventually(loaded, bool, what="the first activation")
        row = await engine._store.get_instance("held")
        assert row is not None
        activations = executor.stats["activations"]
        epoch = executor.lease_epoch()
        executor.run(row, epoch=epoch)  # the same claim again: it is being driven, nothing more happens
        # A newer claim (as if the instance unloaded and was claimed again at once):
        executor.run(msgspec.structs.replace(row, token=row.token + 1), epoch=epoch)
        gate.set()
        assert await handle.result(timeout=10) == 1

        async def ran_again() -> tuple[int, bool]:
            return executor.stats["activations"], executor.local("held") is None

        await eventually(
            ran_again,
            lambda seen: seen == (activations + 1, True),
            what="the queued claim to run, once the first activation was gone",
        )
    assert bodies == 1, "the second activation replayed the recorded step"
