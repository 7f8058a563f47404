"""A step's record may ride with the instance's next write, but never behind a side effect.

The runner hands a step's result back before its record commits, and commits
it with the instance's next write; before any step's function runs, pending
records are committed first. So a crash right after a step's effect never
re-runs the steps before it: their records were committed before it started.
"""

from __future__ import annotations

from collections import Counter

import pytest

from .harness import Checker, MakeScenario, assert_clean


@pytest.mark.parametrize("flavour", ["async-def", "def"])
def test_a_crash_right_after_a_steps_effect_never_reruns_the_steps_before_it(
    make_scenario: MakeScenario, flavour: str
) -> None:
    sc = make_scenario(1, 5, sync_workflow=flavour == "def")
    # Dies right after the effect of step 2 (the third step), before anything else is written.
    sc.wait(sc.spawn(crashpoint="step.after_effect@3"), expect=137)
    sc.snapshot()
    sc.wait(sc.spawn())

    runs = Counter(a.step for a in sc.ledger.attempts())
    assert runs[0] == 1, f"step 0 ran {runs[0]} times: its record was not committed before step 1 ran"
    assert runs[1] == 1, f"step 1 ran {runs[1]} times: its record was not committed before step 2 ran"
    assert runs[2] == 2, f"step 2 ran {runs[2]} times; its record never landed, so it runs again"
    assert runs[3] == runs[4] == 1
    check = Checker(sc)
    assert_clean(check, check.run())
