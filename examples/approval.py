"""An expense waits days for a manager's approval, with daily reminders.

    python examples/approval.py

The workflow publishes its stage as an event, answers a live query, reminds
the manager once a day, and waits for an "approval" message for at most a
week. Durable time runs on a VirtualClock here, so the week passes at once;
with the default clock the same code waits for real, unloaded from memory,
surviving restarts.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import perdure
from perdure.testing import VirtualClock


@dataclass(frozen=True)
class Decision:
    approved: bool
    by: str


@perdure.step
def remind(manager: str, day: int) -> str:
    return f"reminder {day} sent to {manager}"  # stands in for an email


@perdure.step
def pay(expense_id: str, amount: int) -> str:
    return f"paid {amount} for {expense_id}"


@perdure.workflow
async def expense(expense_id: str, amount: int, manager: str) -> str:
    reminders: list[str] = []
    perdure.on_query("reminders", lambda: list(reminders))
    perdure.set_event("stage", "waiting for approval")
    for day in range(1, 8):
        decision = await perdure.recv("approval", timeout=timedelta(days=1), type=Decision)
        if decision is not None:
            perdure.set_event("stage", f"decided by {decision.by}")
            return await pay(expense_id, amount) if decision.approved else "rejected"
        reminders.append(await remind(manager, day))
    perdure.set_event("stage", "expired")
    return "expired after a week without a decision"


async def main() -> None:
    db = Path(tempfile.mkdtemp(prefix="perdure-example-")) / "expenses.db"
    async with perdure.Engine(f"sqlite:///{db}", clock=VirtualClock()) as engine:
        quick = await engine.start(expense, "e-1", 120, "ann")
        slow = await engine.start(expense, "e-2", 80, "bob")
        print("e-1 stage:", await quick.wait_event("stage", timeout=10))
        await quick.send("approval", Decision(approved=True, by="ann"))
        print("e-1:", await quick.result(timeout=10), "|", await quick.get_event("stage"))
        print("e-2:", await slow.result(timeout=10))
        print("e-2 reminders (a live query):", await slow.query("reminders"))
        print("e-2 history:", [f"{h.kind}:{h.name}" for h in await slow.history()][:6], "...")


if __name__ == "__main__":
    asyncio.run(main())
