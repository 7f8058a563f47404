"""The scenario worker for actors: a real executor process to SIGKILL.

    python tests/scenario/actor_worker.py --db PATH --done PATH --mode MODE [options]

Modes (each starts its workflows under fixed ids, so a restart of the same
command finds them again, waits for every result and writes a JSON summary to
``--done``):

- ``checkout``: workflow ``buy-u1`` adds three items to ``Cart/u1`` and checks it
  out. ``Cart.checkout`` records the order in ``PurchaseHistory/u1``, then runs
  the step ``between``, then clears the cart. With ``--pause FILE`` the step
  creates FILE and blocks: the kill comes between the history call and the
  clearing. The summary holds the result and both actors' saved state.
- ``counters``: workflows ``w0`` ... ``w{N-1}`` each call ``Counter(k).add(1)``
  ``--calls`` times over ``--keys`` keys (``k = (w + c) % keys``), alternating an
  awaited call and an enqueued one. The summary holds every counter's state.
- ``direct``: this process, as a client, calls ``Counter(k).add(1)`` ``--calls`` times
  over ``--keys`` keys, one after the other (direct calls, see ``_runtime/direct.py``),
  appending each acknowledged key to ``--acks``. The summary holds every counter's
  state and how many completed calls each one's oplog shows.
- ``mailbox``: the call ``Tally/t/gather`` (enqueued under an idempotency key) takes
  ``--calls`` messages from its actor's mailbox; workflow ``feed`` sends them with
  ``perdure.send_actor``, running the step ``between`` halfway (``--pause`` blocks
  it there, the call waiting for the rest). The summary holds the call's result, the
  actor's state and the messages left in its mailbox.

``--crashpoint SPEC`` and ``--seed N`` set ``PERDURE_CRASHPOINT`` and
``PERDURE_SEED`` for the process: an armed crash point exits it with 137.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import perdure

reg = perdure.Registry()
PAUSE: Path | None = None


@dataclass
class Item:
    sku: str
    qty: int


@perdure.actor(registry=reg)
class PurchaseHistory:
    def __init__(self, user_id: str) -> None:
        self.orders: list[list[Item]] = []

    def add_order(self, items: list[Item]) -> int:
        self.orders.append(items)
        return len(self.orders)


@perdure.step(registry=reg)
def between() -> None:
    if PAUSE is not None:
        PAUSE.touch()
        time.sleep(120)  # blocks until the test, which waits for PAUSE, SIGKILLs this process


@perdure.actor(registry=reg)
class Cart:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.items: list[Item] = []

    def add_item(self, item: Item) -> int:
        self.items.append(item)
        return len(self.items)

    async def checkout(self) -> int:
        history = perdure.actor_ref(PurchaseHistory, self.user_id)
        orders = await history.call(PurchaseHistory.add_order, list(self.items))
        await between()
        self.items.clear()
        return orders


@perdure.actor(registry=reg)
class Counter:
    def __init__(self, key: str) -> None:
        self.value = 0

    def add(self, n: int) -> int:
        self.value += n
        return self.value


@perdure.actor(registry=reg)
class Tally:
    def __init__(self, key: str) -> None:
        self.seen: list[int] = []

    async def gather(self, n: int) -> list[int]:
        for _ in range(n):
            self.seen.append(await perdure.recv("n", type=int))
        return self.seen


@perdure.workflow(registry=reg)
async def feed(key: str, n: int) -> int:
    for i in range(n):
        if i == n // 2:
            await between()
        await perdure.send_actor(Tally, key, "n", i)
    return n


@perdure.workflow(registry=reg)
async def buy(user: str) -> int:
    cart = perdure.actor_ref(Cart, user)
    for i in range(3):
        await cart.call(Cart.add_item, Item(f"sku-{i}", i + 1))
    return await cart.call(Cart.checkout)


@perdure.workflow(registry=reg)
async def count(w: int, calls: int, keys: int) -> int:
    for c in range(calls):
        counter = perdure.actor_ref(Counter, f"k{(w + c) % keys}")
        if c % 2:
            await counter.enqueue(Counter.add, 1)
        else:
            await counter.call(Counter.add, 1)
    return calls


async def call_directly(engine: perdure.Engine, opts: argparse.Namespace) -> dict[str, object]:
    with open(opts.acks, "a") as acks:  # noqa: ASYNC230 - each ack is on disk before the next call
        for c in range(opts.calls):
            key = f"k{c % opts.keys}"
            await engine.actor(Counter, key).add(1)
            acks.write(key + "\n")
            acks.flush()
    actors = (await engine.list_actors(type=Counter, limit=1000)).items
    counters = {a.key: (await engine.actor_state(Counter, a.key))["value"] for a in actors}
    completed = {
        a.key: sum(
            e.status is perdure.Status.COMPLETED for e in (await engine.actor_oplog(Counter, a.key)).items
        )
        for a in actors
    }
    return {
        "counters": counters,
        "completed": completed,
        "invocations": {a.key: a.invocations for a in actors},
    }


async def main(opts: argparse.Namespace) -> dict[str, object]:
    async with perdure.Engine(f"sqlite:///{opts.db}", registry=reg, poll_interval=0.05) as engine:
        summary: dict[str, object]
        if opts.mode == "checkout":
            handle = await engine.start(buy, "u1", id="buy-u1")
            summary = {
                "result": await handle.result(),
                "cart": await engine.actor_state(Cart, "u1"),
                "history": await engine.actor_state(PurchaseHistory, "u1"),
            }
        elif opts.mode == "mailbox":
            call = await engine.enqueue(Tally, "t", "gather", opts.calls, idempotency_key="gather")
            await (await engine.start(feed, "t", opts.calls, id="feed")).result()
            result = await engine.invocation_result(call)
            info = await engine.actor_info(Tally, "t")
            summary = {"result": result, "state": await engine.actor_state(Tally, "t"), "left": info.messages}
        elif opts.mode == "direct":
            summary = await call_directly(engine, opts)
        else:
            handles = [
                await engine.start(count, w, opts.calls, opts.keys, id=f"w{w}") for w in range(opts.workflows)
            ]
            results = [await h.result() for h in handles]
            # Enqueued calls may still be in the inboxes: wait until every actor is idle.
            while (await engine.list_actors(status="busy")).items:  # noqa: ASYNC110 - polls the store
                await asyncio.sleep(0.05)
            counters = {a.key: (await engine.actor_state(Counter, a.key))["value"] for a in
                        (await engine.list_actors(type=Counter, limit=1000)).items}  # fmt: skip
            summary = {"results": results, "counters": counters}
    return summary


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--db", required=True)
    p.add_argument("--done", required=True)
    p.add_argument("--mode", choices=["checkout", "counters", "direct", "mailbox"], required=True)
    p.add_argument("--pause")
    p.add_argument("--acks")
    p.add_argument("--workflows", type=int, default=4)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--keys", type=int, default=3)
    p.add_argument("--crashpoint")
    p.add_argument("--seed", type=int)
    opts = p.parse_args()
    if opts.crashpoint:
        os.environ["PERDURE_CRASHPOINT"] = opts.crashpoint  # read when the Engine is made
    if opts.seed is not None:
        os.environ["PERDURE_SEED"] = str(opts.seed)
    PAUSE = Path(opts.pause) if opts.pause else None
    Path(opts.done).write_text(json.dumps(asyncio.run(main(opts))))
