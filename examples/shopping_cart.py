"""A shopping cart and a purchase history: two durable actors calling each other.

    python examples/shopping_cart.py

The cart's items are plain attributes, saved after every call. ``checkout``
records the order in the user's purchase history exactly once (the call is
journaled in the checkout), then empties the cart. ``redeem_coupon`` waits for a
message in the cart's mailbox. Run it twice: the second run finds both actors
where the first left them.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from pathlib import Path

import perdure

STATE = Path(tempfile.gettempdir()) / "perdure-example-cart"
STATE.mkdir(exist_ok=True)


@dataclass(frozen=True)
class Item:
    sku: str
    quantity: int
    cents: int


@dataclass(frozen=True)
class OrderConfirmation:
    order_id: str
    items: list[Item]
    total_cents: int


@perdure.actor
class PurchaseHistory:
    def __init__(self, user_id: str) -> None:
        self.orders: list[OrderConfirmation] = []

    def add_order(self, order: OrderConfirmation) -> int:
        self.orders.append(order)
        return len(self.orders)

    def spent_cents(self) -> int:
        return sum(o.total_cents for o in self.orders)


@perdure.actor
class ShoppingCart:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.items: list[Item] = []

    def add_item(self, item: Item) -> int:
        self.items.append(item)
        return len(self.items)

    async def checkout(self) -> OrderConfirmation:
        if not self.items:
            raise ValueError("the cart is empty")
        order = OrderConfirmation(
            order_id=perdure.uuid4().hex,  # recorded: a re-run after a crash makes the same id
            items=list(self.items),
            total_cents=sum(i.quantity * i.cents for i in self.items),
        )
        history = perdure.actor_ref(PurchaseHistory, self.user_id)
        await history.call(PurchaseHistory.add_order, order)  # exactly once
        self.items.clear()
        return order

    async def redeem_coupon(self, seconds: float) -> str | None:
        """A coupon code from the cart's mailbox, sent with ``send_actor`` before or while this
        waits (up to ``seconds``); other calls of this cart queue behind it meanwhile."""
        code: str | None = await perdure.recv("coupon", timeout=seconds)
        return code


async def main() -> None:
    async with perdure.Engine(f"sqlite:///{STATE / 'cart.db'}") as engine:
        cart = engine.actor(ShoppingCart, "user-42")
        await cart.call(ShoppingCart.add_item, Item("coffee", 2, 450))
        await cart.call(ShoppingCart.add_item, Item("mug", 1, 1200))
        order = await cart.call(ShoppingCart.checkout)
        print(f"order {order.order_id}: {len(order.items)} items, {order.total_cents / 100:.2f} total")
        history = engine.actor(PurchaseHistory, "user-42")
        print(f"user-42 has spent {await history.call(PurchaseHistory.spent_cents) / 100:.2f} in all")
        assert await engine.actor_state(ShoppingCart, "user-42") == {"user_id": "user-42", "items": []}
        for entry in (await engine.actor_oplog(ShoppingCart, "user-42")).items[-3:]:
            print(
                f"  {entry.method}({entry.arguments}) -> {entry.status.value}, state {entry.state_size} bytes"
            )
        try:
            await cart.call(ShoppingCart.checkout)
        except perdure.ActorCallFailed as exc:
            print(f"checking out an empty cart: {exc.error_type}: {exc.message}")
        waiting = await cart.enqueue(ShoppingCart.redeem_coupon, 60)  # waits in the cart's mailbox
        await engine.send_actor(ShoppingCart, "user-42", "coupon", "SPRING10")
        print(f"coupon redeemed: {await engine.invocation_result(waiting, timeout=60)}")


if __name__ == "__main__":
    asyncio.run(main())
