"""The app module the test servers load (``perdure server --app served_app``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import perdure


@dataclass(frozen=True)
class Order:
    item: str
    qty: int


@perdure.step
async def double(x: int) -> int:
    return 2 * x


@perdure.workflow
async def twice(x: int) -> int:
    return await double(x)


@perdure.workflow
async def total(order: Order, price: int) -> dict[str, object]:
    return {"item": order.item, "total": await double(order.qty * price // 2)}


@perdure.step
async def boom(message: str) -> None:
    raise perdure.NonRetryableError(message)


@perdure.workflow
async def fails(message: str) -> None:
    await boom(message)


@perdure.workflow
async def inbox(expected: int) -> list[str]:
    """Collects ``expected`` messages on 'note', publishing progress and answering 'seen'."""
    seen: list[str] = []
    perdure.on_query("seen", lambda: list(seen))
    perdure.set_event("stage", "listening")
    while len(seen) < expected:
        note = await perdure.recv("note", type=str)
        assert note is not None
        seen.append(note)
        perdure.set_event("count", len(seen))
    return seen


@perdure.step
async def slow_step(i: int) -> int:
    await asyncio.sleep(0.02)
    return i


@perdure.workflow
async def slow(n: int) -> int:
    done = 0
    for i in range(n):
        done += await slow_step(i)
    return done


@perdure.actor
class Counter:
    """An actor for the HTTP tests: a number, a method that raises, and one that never ends."""

    def __init__(self, key: str) -> None:
        self.value = 0

    def add(self, n: int) -> int:
        self.value += n
        return self.value

    def fail(self, message: str) -> None:
        self.value += 1000  # not kept: a call that raises saves nothing
        raise ValueError(message)

    async def stall(self) -> None:
        """Waits a day (durably): the actor stays busy for the whole test."""
        await perdure.sleep(86_400)

    async def collect(self, topic: str, n: int) -> list[object]:
        """Takes ``n`` messages on ``topic`` from the actor's mailbox, waiting for them."""
        return [await perdure.recv(topic) for _ in range(n)]

    def state(self) -> str:
        """A method named like the state route: called by POST, read by GET."""
        return f"value is {self.value}"


@perdure.actor(durable=False)
class Quote:
    """An ephemeral actor: a fresh object per call, nothing kept."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.calls = 0

    def price(self, qty: int) -> str:
        self.calls += 1
        if qty < 0:
            raise ValueError("negative quantity")
        return f"{self.key}: {qty * 3} (call {self.calls})"
