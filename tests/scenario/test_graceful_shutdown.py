"""Graceful shutdown mid-run (``engine.close(grace)``), then a restart finishes the work.

Nothing crashes here, so P4 allows no re-run at all: a step whose function
returned before the process exited must have its result committed (R6:
"finished effects committed"), and the restart must not run it again.
"""

from __future__ import annotations

import pytest

from .harness import Checker, MakeScenario, assert_clean


@pytest.mark.parametrize(
    ("steps", "grace"),
    [
        # A long grace period: ample time for the steps in flight.
        pytest.param(5, 10.0, id="long-grace"),
        # The grace period (0.5 s) outlasts any one step (0.05 s) but not the workflows
        # (20 steps each): running steps must be let finish and recorded, not cut off.
        pytest.param(20, 0.5, id="grace-shorter-than-the-work"),
    ],
)
@pytest.mark.parametrize("flavour", ["async-def", "def"])
def test_graceful_close_midway_then_restart_reruns_no_finished_step(
    make_scenario: MakeScenario, steps: int, grace: float, flavour: str
) -> None:
    step_sleep = 0.05
    sc = make_scenario(10, steps, sync_workflow=flavour == "def")
    closed = sc.spawn(step_sleep=step_sleep, close_after=20, close_grace=grace)
    sc.wait(closed, expect=3)
    at_close = sc.snapshot()
    recorded = at_close.state.steps()
    finished = [
        (a.instance, a.step)
        for a in sc.ledger.attempts()
        if a.pid == closed.pid and a.outcome == "ok" and (a.instance, a.step) not in recorded
    ]
    print(f"closed with grace {grace}s: {at_close.state.statuses()}; finished but not recorded: {finished}")

    sc.wait(sc.spawn(step_sleep=0.005))

    check = Checker(sc)
    violations = check.run()
    violations["finished effects committed"] = [
        f"{wid}@{pos} returned in the closing process (pid {closed.pid}) but its result was not committed"
        for wid, pos in finished
    ]
    assert_clean(check, violations)
