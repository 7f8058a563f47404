"""Static typing of the public API: mypy --strict checks these assert_type calls.

Nothing here runs as a test; the file only has to type-check.
"""

from __future__ import annotations

from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, assert_type

import perdure


@dataclass
class Receipt:
    amount: int


@perdure.step
def charge(order_id: str, amount: int) -> Receipt:
    return Receipt(amount)


@perdure.step(retry=perdure.RetryPolicy(max_attempts=2), timeout=5.0)
async def notify(receipt: Receipt) -> None:
    return None


@perdure.step(name="tax")
def tax(amount: int) -> float:
    return amount * 0.2


@perdure.workflow
async def checkout(order_id: str, amount: int) -> Receipt:
    receipt = await charge(order_id, amount)
    assert_type(receipt, Receipt)
    await notify(receipt)
    assert_type(await tax(amount), float)  # options keep the function's types
    assert_type(perdure.now().year, int)
    assert_type(perdure.random(), float)
    assert_type(perdure.uuid4().hex, str)
    return receipt


@perdure.workflow(name="checkout-v2")
def checkout_sync(order_id: str) -> int:
    return 1


async def start_with_options(engine: perdure.Engine) -> None:
    assert_type(await (await engine.start(checkout_sync, "o-1")).result(), int)  # options keep types


async def client(engine: perdure.Engine) -> None:
    handle = await engine.start(checkout, "o-1", 100, id="order-o-1")
    assert_type(handle, perdure.WorkflowHandle[Receipt])
    assert_type(await handle.result(), Receipt)
    assert_type(await handle.status(), perdure.Status)
    by_name = await engine.start("checkout", "o-2", 5)
    assert_type(by_name, perdure.WorkflowHandle[Any])
    page = await engine.list(status="completed", limit=10)
    assert_type(page.items, list[perdure.WorkflowInfo])
    assert_type(page.cursor, str | None)


def sync_client() -> None:
    with perdure.Engine("sqlite:///app.db") as engine:
        assert_type(engine, perdure.SyncEngine)
        handle = engine.start(checkout, "o-1", 100)
        assert_type(handle, perdure.SyncHandle[Receipt])
        assert_type(handle.result(timeout=1.0), Receipt)
        assert_type(engine.get("x"), perdure.SyncHandle[Any])


@perdure.actor
class Wallet:
    def __init__(self, key: str) -> None:
        self.cents = 0

    def deposit(self, cents: int) -> int:
        self.cents += cents
        return self.cents

    async def statement(self, month: str) -> list[str]:
        return [month]


@perdure.actor(version=2, durable=True)
class Ledger:
    def __init__(self, key: str) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)


async def actors(engine: perdure.Engine, sync: perdure.SyncEngine) -> None:
    assert_type(Wallet, type[Wallet])  # the decorators return the class itself
    assert_type(Ledger("k").lines, list[str])
    wallet = engine.actor(Wallet, "w")
    assert_type(wallet, perdure.ActorRef[Wallet])
    assert_type(await wallet.call(Wallet.deposit, 5), int)  # the method's types, checked
    assert_type(await wallet.call(Wallet.statement, "2026-11"), list[str])
    assert_type(await wallet.enqueue(Wallet.deposit, 5), str)
    assert_type(sync.actor(Wallet, "w").call(Wallet.deposit, 5), int)
    # With the plugin perdure.mypy, ref.method has the method's own types.
    assert_type(await wallet.deposit(5), int)
    assert_type(await wallet.deposit(cents=5), int)
    assert_type(await wallet.statement("2026-11"), list[str])  # async def: what it returns
    assert_type(await wallet.deposit.enqueue(5), str)
    assert_type(sync.actor(Wallet, "w").deposit(5), int)
    assert_type(sync.actor(Wallet, "w").statement.enqueue("2026-11"), str)
    assert_type(wallet.key, str)  # the reference's own attributes keep theirs
    assert_type(await engine.invoke(Wallet, "w", "deposit", 5, idempotency_key="k"), Any)
    assert_type(await engine.list_actors(type=Wallet), perdure.ActorPage)
    assert_type(await engine.send_actor(Wallet, "w", "topic", {"any": "json"}, idempotency_key="k"), None)
    assert_type(sync.send_actor("Wallet", "w", "topic", 1), None)
    assert_type((await engine.actor_info(Wallet, "w")).messages, int)


async def actor_in_workflow() -> int:
    await perdure.send_actor(Wallet, "w", "topic", 1)
    return await perdure.actor_ref(Wallet, "w").call(Wallet.deposit, 1)


@perdure.workflow
def def_workflow(order_id: str) -> int:
    # With the plugin, a def gets the values themselves, as it does at run time.
    assert_type(charge(order_id, 5), Receipt)
    assert_type(perdure.actor_ref(Wallet, "w").deposit(1), int)
    assert_type(perdure.actor_ref(Wallet, "w").call(Wallet.statement, "2026-11"), list[str])
    assert_type(perdure.actor_ref(Wallet, "w").deposit.enqueue(1), str)
    assert_type(perdure.recv("approval", type=int), Any)
    assert_type(perdure.sleep(5), None)
    assert_type(perdure.send_actor(Wallet, "w", "topic", 1), None)
    child = perdure.start_child(checkout_sync, "o-2")
    assert_type(child, perdure.ChildHandle[int])
    assert_type(child.result(), int)
    assert_type(perdure.wait_for(lambda: tax(5), timeout=10), float)
    return 1


@perdure.workflow
async def async_workflow_with_a_deadline() -> float:
    # In async code (a lambda included) the same calls stay awaitables.
    assert_type(tax(5), Awaitable[float])
    return await perdure.wait_for(lambda: tax(5), timeout=10)


async def actor_misuse(engine: perdure.Engine, sync: perdure.SyncEngine) -> None:
    # strict mypy reports unused ignores: each line below must be an error for this file to pass.
    await engine.actor(Wallet, "w").call(Wallet.deposit, "five")  # type: ignore[call-overload]
    await engine.actor(Wallet, "w").call(Ledger.add, "x")  # type: ignore[call-overload]
    await engine.actor(Wallet, "w").deposit("five")  # type: ignore[arg-type]
    await engine.actor(Wallet, "w").deposit(5, 6)  # type: ignore[call-arg]
    await engine.actor(Wallet, "w").deposit.enqueue()  # type: ignore[call-arg]
    await engine.actor(Wallet, "w").withdraw(5)  # type: ignore[misc]
    sync.actor(Ledger, "l").add(1)  # type: ignore[arg-type]
