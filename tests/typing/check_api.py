"""Static typing of the public API: mypy --strict checks these assert_type calls.

Nothing here runs as a test; the file only has to type-check.
"""

from __future__ import annotations

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
