"""The examples as one app for ``perdure server``: what ``python3 tasks.py run`` serves.

    perdure server --app examples/app.py --db sqlite:///examples.db

Registers the workflows ``checkout`` (a payment retried durably,
examples/checkout.py), ``expense`` (an approval that waits days for a message,
examples/approval.py) and ``hello`` (below), and the actors ``ShoppingCart`` and
``PurchaseHistory`` (examples/shopping_cart.py); the server runs them and answers
over HTTP.
"""

from __future__ import annotations

from approval import Decision, expense
from checkout import Receipt, checkout
from shopping_cart import Item, PurchaseHistory, ShoppingCart

import perdure

__all__ = ["Decision", "Item", "PurchaseHistory", "Receipt", "ShoppingCart", "checkout", "expense", "hello"]


@perdure.step
async def greeting(name: str) -> str:
    return f"hello, {name}"


@perdure.workflow
async def hello(name: str) -> str:
    """One step: the smallest workflow to start from curl or the CLI."""
    return await greeting(name)
