"""Test kit for code that uses perdure.

``VirtualClock`` runs durable time (sleeps, receive timeouts, retry backoffs)
ahead whenever the engine is idle, so a test of a 30-day flow runs in
milliseconds::

    clock = perdure.testing.VirtualClock()
    async with perdure.Engine(url, clock=clock) as engine:
        handle = await engine.start(reminder_flow, "user-1")
        await handle.result()          # the 30 days pass at once
"""

from perdure._runtime.clock import VirtualClock

__all__ = ["VirtualClock"]

VirtualClock.__module__ = "perdure.testing"
