"""A checkout: a flaky payment call retried durably, then a receipt.

    python examples/checkout.py

Run it twice: the second run finds the workflow already finished under the same
id and returns its recorded result without charging again.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import perdure

STATE = Path(tempfile.gettempdir()) / "perdure-example-checkout"
STATE.mkdir(exist_ok=True)
CALLS = STATE / "payment-calls.txt"


@dataclass(frozen=True)
class Receipt:
    order_id: str
    amount: int
    payment_id: str


@perdure.step(retry=perdure.RetryPolicy(max_attempts=5, initial_interval=0.2, backoff=2.0, max_interval=2.0))
def charge(order_id: str, amount: int) -> str:
    """Stands in for an HTTP call to a payment provider that fails the first two times."""
    key = perdure.idempotency_key()  # the same for every attempt: give it to the provider
    with CALLS.open("a") as f:
        f.write(f"{order_id} {key}\n")
    attempts = [line for line in CALLS.read_text().splitlines() if line.split()[0] == order_id]
    if len(attempts) < 3:
        raise ConnectionError("payment provider timed out")
    return f"pay-{key}"


@perdure.step
async def send_receipt(receipt: Receipt) -> None:
    print(f"  receipt sent: {receipt}")


@perdure.workflow
async def checkout(order_id: str, amount: int) -> Receipt:
    payment_id = await charge(order_id, amount)
    receipt = Receipt(order_id=order_id, amount=amount, payment_id=payment_id)
    await send_receipt(receipt)
    return receipt


async def main() -> None:
    db = STATE / "checkout.db"
    async with perdure.Engine(f"sqlite:///{db}") as engine:
        order = f"o-{os.getpid()}"
        handle = await engine.start(checkout, order, 100, id=f"order-{order}")
        receipt = await handle.result(timeout=30)
        print(f"checkout {handle.id}: {receipt}")
        for entry in await handle.history():
            print(f"  #{entry.position} {entry.kind} {entry.name}: attempts={entry.attempts} ok={entry.ok}")
        again = await engine.start(checkout, order, 100, id=f"order-{order}")
        assert await again.result() == receipt
        print("starting the same order again returned the recorded receipt; no second charge")


if __name__ == "__main__":
    asyncio.run(main())
