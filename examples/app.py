"""The examples as one app for ``perdure server``: what ``python3 tasks.py run`` serves.

    perdure server --app examples/app.py --db sqlite:///examples.db

Registers ``checkout`` (a payment retried durably, examples/checkout.py),
``expense`` (an approval that waits days for a message, examples/approval.py)
and ``hello`` (below), then the server runs them and answers over HTTP.
"""

from __future__ import annotations

from approval import Decision, expense
from checkout import Receipt, checkout

import perdure

__all__ = ["Decision", "Receipt", "checkout", "expense", "hello"]


@perdure.step
async def greeting(name: str) -> str:
    return f"hello, {name}"


@perdure.workflow
async def hello(name: str) -> str:
    """One step: the smallest workflow to start from curl or the CLI."""
    return await greeting(name)
