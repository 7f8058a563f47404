"""SIGKILL an executor midway through many workflows; a new process on the same database finishes them.

The workload (``worker.py``): ``chain(instance, steps)`` calls the step ``work``
``steps`` times in a row; every execution of ``work`` writes its (instance,
step) to the effect ledger, outside the engine's database, before and after
its effect.
"""

from __future__ import annotations

import os
import random

import pytest

from .harness import Checker, MakeScenario, assert_clean


def test_sigkill_midway_then_restart_finishes_all_and_reruns_no_recorded_step(
    make_scenario: MakeScenario,
) -> None:
    sc = make_scenario(50, 20)
    first = sc.spawn(step_sleep=0.01)
    before = sc.kill_at(first, 400)
    assert before.state.statuses().get("completed", 0) < sc.workflows, "the kill came after the end"
    print(
        f"killed pid {first.pid} after {sc.ledger.count_attempts()} executions; {len(before.state.steps())} recorded"
    )

    sc.wait(sc.spawn(step_sleep=0.01))

    check = Checker(sc)
    violations = check.run()
    runs = {key: len(attempts) for key, attempts in check.by_step.items()}
    violations["all 1000 steps ran"] = [f"{len(runs)} distinct steps ran"] if len(runs) != 50 * 20 else []
    violations["at most twice"] = [f"{k} ran {n} times" for k, n in sorted(runs.items()) if n > 2]
    assert_clean(check, violations)


@pytest.mark.slow
def test_five_sigkills_at_random_progress_then_restart_finishes_all(make_scenario: MakeScenario) -> None:
    seed = int(os.environ.get("PERDURE_SEED") or random.SystemRandom().randrange(2**32))
    print(f"PERDURE_SEED={seed}")
    rng = random.Random(seed)
    sc = make_scenario(50, 20)
    executions = 0
    for _ in range(5):
        executions += rng.randrange(50, 250)
        sc.kill_at(sc.spawn(step_sleep=0.01), executions, timeout=120)

    sc.wait(sc.spawn(step_sleep=0.01), timeout=120)

    check = Checker(sc)
    assert_clean(check, check.run())
