"""A typed receive replays the same way whether it got a message or timed out."""

from __future__ import annotations

from dataclasses import dataclass

import perdure
from perdure.testing import VirtualClock


@dataclass(frozen=True)
class Order:
    item: str


async def test_a_typed_receive_that_timed_out_replays_as_none(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.step(registry=registry)
    async def mark(i: int) -> int:
        return i

    @perdure.workflow(registry=registry)
    async def waiter() -> list[str | None]:
        got: list[str | None] = []
        for i in range(3):
            order = await perdure.recv("orders", timeout=3600, type=Order)  # unloads: replayed after
            got.append(None if order is None else order.item)
            await mark(i)
        return got

    async with perdure.Engine(db_url, registry=registry, clock=VirtualClock()) as engine:
        handle = await engine.start(waiter)
        assert await handle.result(timeout=20) == [None, None, None]
        kinds = [e.kind for e in await handle.history()]
    assert kinds == ["deadline", "recv", "step"] * 3
