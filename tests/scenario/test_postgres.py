"""Executor processes sharing one PostgreSQL database: SIGKILL, failover, a database restart.

The workload is ``worker.py``'s ``chain``: every step writes its execution and its
effect to the ledger (a SQLite file outside the engine's database). On
PostgreSQL a dead executor's instances are taken over when its liveness lock (a
session advisory lock) is free, or when its lease expires (``--lease-ttl``),
whichever comes first.
"""

from __future__ import annotations

import os
import signal

import pytest

from .cluster import Cluster
from .harness import Checker, MakeScenario, assert_clean, eventually, read_state

LEASE = ("--lease-ttl", "2")


def test_sigkill_midway_on_postgres_then_restart_finishes_all_and_reruns_no_recorded_step(
    make_scenario: MakeScenario, postgres_url: str
) -> None:
    sc = make_scenario(30, 10, engine_url=postgres_url)
    before = sc.kill_at(sc.spawn(step_sleep=0.01, extra=LEASE), 120)
    assert before.state.statuses().get("completed", 0) < sc.workflows, "the kill came after the end"

    sc.wait(sc.spawn(step_sleep=0.01, extra=LEASE), timeout=90)

    check = Checker(sc)
    assert_clean(check, check.run())
    assert len(check.by_step) == 30 * 10


def test_a_killed_executors_instances_are_recovered_at_once_not_a_lease_later(
    make_scenario: MakeScenario, postgres_url: str
) -> None:
    # A lease of an hour: only the dead process's free liveness lock lets the restart
    # (whose timeout is far shorter) recover the instances.
    hour = ("--lease-ttl", "3600")
    sc = make_scenario(20, 6, engine_url=postgres_url)
    before = sc.kill_at(sc.spawn(step_sleep=0.01, extra=hour), 50)
    assert before.state.statuses().get("running", 0) > 0, "the kill left nothing to recover"

    sc.wait(sc.spawn(step_sleep=0.01, extra=hour), timeout=90)

    check = Checker(sc)
    assert_clean(check, check.run())
    assert len(check.by_step) == 20 * 6


@pytest.mark.parametrize(
    ("workflows", "kill_after"),
    [
        pytest.param(120, 300, id="bounded"),
        pytest.param(2000, 7000, id="2000x10", marks=pytest.mark.slow),
    ],
)
def test_three_executors_share_the_work_and_one_sigkilled_loses_nothing(
    make_scenario: MakeScenario, postgres_url: str, workflows: int, kill_after: int
) -> None:
    sc = make_scenario(workflows, 10, engine_url=postgres_url)
    sc.wait(sc.spawn(extra=("--start-only",)))  # all pending: the executors claim them
    shared = (*LEASE, "--max-active", "20")
    doomed = sc.spawn(step_sleep=0.005, extra=shared, done=sc.dir / "done-doomed.json")
    # The doomed executor holds work when it dies: on a loaded machine the others, started at
    # once, could otherwise take every workflow before its interpreter is up.
    eventually(
        lambda: any(a.pid == doomed.pid for a in sc.ledger.attempts()),
        timeout=60,
        what="the doomed executor running a step",
        worker=doomed,
    )
    survivors = [
        sc.spawn(step_sleep=0.005, extra=shared),
        sc.spawn(step_sleep=0.005, extra=shared, done=sc.dir / "done-2.json"),
    ]
    sc.kill_at(doomed, kill_after, timeout=120)
    for w in survivors:
        sc.wait(w, timeout=300 if workflows > 500 else 120)

    check = Checker(sc)
    violations = check.run()
    ran = {a.pid for a in check.attempts}
    violations["work shared"] = (
        [] if ran >= {doomed.pid, *(w.pid for w in survivors)} else [f"only pids {ran} ran steps"]
    )
    assert_clean(check, violations)
    assert len(check.by_step) == workflows * 10


@pytest.mark.parametrize(
    "restarts", [pytest.param(1, id="once"), pytest.param(3, id="thrice", marks=pytest.mark.slow)]
)
def test_postgres_killed_and_restarted_mid_run_all_work_completes(
    make_scenario: MakeScenario, private_postgres: Cluster, restarts: int
) -> None:
    sc = make_scenario(40, 10, engine_url=private_postgres.url)
    worker = sc.spawn(step_sleep=0.05, extra=LEASE)
    for n in range(1, restarts + 1):
        eventually(
            lambda n=n: sc.ledger.count_attempts() >= 100 * n,  # type: ignore[misc]
            timeout=60,
            what=f"{100 * n} step executions",
            seen=lambda: f"{sc.ledger.count_attempts()} executions",
            worker=worker,
        )
        private_postgres.kill()
        assert sc.ledger.count_attempts() < 400, "the database went down after the run ended"
        private_postgres.start()
    sc.wait(worker, timeout=120)

    check = Checker(sc)
    assert_clean(check, check.run())
    assert len(check.by_step) == 40 * 10


def test_an_executor_paused_past_its_lease_cannot_commit_when_it_wakes(
    make_scenario: MakeScenario, postgres_url: str
) -> None:
    """R8 in small: SIGSTOP an executor mid-run; another takes its instances when its lease
    expires and finishes them; after SIGCONT the zombie's late records are all refused."""
    sc = make_scenario(40, 10, engine_url=postgres_url)
    sc.wait(sc.spawn(extra=("--start-only",)))
    shared = (*LEASE, "--max-active", "40")
    zombie = sc.spawn(step_sleep=0.02, extra=shared, done=sc.dir / "done-zombie.json")
    eventually(
        lambda: sc.ledger.count_attempts() >= 60,
        timeout=60,
        what="60 step executions",
        seen=lambda: f"{sc.ledger.count_attempts()} executions",
        worker=zombie,
    )
    sc.pause(zombie)
    try:
        before = sc.snapshot()
        assert before.state.statuses().get("completed", 0) < sc.workflows, "the pause came after the end"
        sc.wait(sc.spawn(step_sleep=0.02, extra=shared), timeout=120)  # it waits for all 40
    finally:
        os.kill(zombie.pid, signal.SIGCONT)
    after = read_state(sc.url)
    sc.wait(zombie, timeout=60)

    check = Checker(sc)
    violations = check.run()
    violations["zombie wrote nothing"] = [
        f"{wid} changed after the survivor finished"
        for wid in after.infos
        if check.state.histories[wid] != after.histories[wid]
    ]
    assert_clean(check, violations)
    assert {a.pid for a in check.attempts} >= {zombie.pid}
