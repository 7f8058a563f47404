"""A step's retry backoff survives SIGKILL: the attempt count and next attempt time are durable.

One ``chain`` workflow of 2 steps (``worker.py``); step 0 fails its first
attempt on purpose (``--fail-step 0 --fail-attempts 1``) and retries after a
fixed ``--retry-interval``.
"""

from __future__ import annotations

import perdure

from .harness import (
    Checker,
    MakeScenario,
    Scenario,
    Worker,
    assert_clean,
    clock,
    eventually,
    holds_for,
    retry_rows,
)

WID = "wf-0"


def spawn_flaky(sc: Scenario, interval: float) -> Worker:
    """A worker whose step 0 fails its first attempt and retries ``interval`` seconds later."""
    return sc.spawn(fail_step=0, fail_attempts=1, retry_interval=interval)


def first_failure(sc: Scenario) -> tuple[float, float]:
    """Wait for the first attempt's failure and its retry state: (failure ended at, next attempt at)."""
    eventually(
        lambda: len(retry_rows(sc.db)) == 1,
        timeout=30,
        what="the first failure's retry state to be committed",
        seen=lambda: f"retries {retry_rows(sc.db)}, attempts {sc.ledger.attempts()}",
        worker=sc.workers[-1],
    )
    (row,) = retry_rows(sc.db)
    assert row[:3] == (WID, 0, 1), f"expected one failed attempt of {WID} step 0 waiting, got {row}"
    (attempt,) = sc.ledger.attempts()
    assert attempt.outcome == "error"
    assert attempt.ended is not None
    return attempt.ended, row[3]


def test_sigkill_during_long_backoff_keeps_the_countdown_and_runs_nothing_early(
    make_scenario: MakeScenario,
) -> None:
    sc = make_scenario(1, 2)
    first = spawn_flaky(sc, 1800.0)
    failed_at, next_at = first_failure(sc)
    assert failed_at + 1800 - 1 <= next_at <= failed_at + 1800 + 1, (failed_at, next_at)
    with sc.client() as client:
        eventually(
            lambda: client.info(WID).status is perdure.Status.WAITING,
            timeout=30,
            what=f"{WID} to be unloaded into 'waiting' for its 30-minute backoff",
            seen=lambda: client.info(WID),
            worker=first,
        )
        waiting = client.info(WID)
    assert waiting.wake_at is not None
    assert abs(waiting.wake_at.timestamp() - next_at) < 1e-3, (waiting.wake_at, next_at)
    first.kill()

    second = spawn_flaky(sc, 1800.0)
    eventually(
        lambda: WID in sc.ledger.starts(pid=second.pid),
        timeout=30,
        what="the restarted worker to find the instance again (idempotent start)",
        worker=second,
    )
    # The restarted executor has claimed whatever was due by now; for a while, nothing may run.
    holds_for(
        lambda: sc.ledger.count_attempts() == 1 and second.poll() is None,
        1.0,
        what="no new attempt while the recorded backoff runs",
        seen=lambda: f"attempts {sc.ledger.attempts()}, worker exit {second.poll()}",
    )
    with sc.client() as client:
        after = client.info(WID)
    print(f"before kill: {waiting}\nafter restart: {after}\nretry state: {retry_rows(sc.db)}")
    assert after.status is perdure.Status.WAITING
    assert after.wake_at == waiting.wake_at, "the restart began a fresh countdown"
    assert retry_rows(sc.db) == [(WID, 0, 1, next_at)], "the attempt count or next attempt time changed"
    second.kill()

    check = Checker(sc)
    assert_clean(
        check,
        {
            "C2": check.c2_journals_contiguous_and_unchanged(),
            "C4": check.c4_attempts_bounded(),
            "P4-keys": check.p4_idempotency_keys_stable(),
            "C7": check.c7_databases_clean(),
        },
    )


def test_sigkill_during_short_backoff_retries_at_the_recorded_time_not_a_fresh_one(
    make_scenario: MakeScenario,
) -> None:
    interval = 2.0
    sc = make_scenario(1, 2)
    first = spawn_flaky(sc, interval)
    failed_at, next_at = first_failure(sc)
    eventually(lambda: clock.now() >= failed_at + 0.5, timeout=5, what="0.5 s of the backoff to pass")
    first.kill()
    assert sc.ledger.count_attempts() == 1, "attempt 2 ran before the kill; the kill came too late"

    restarted_at = clock.now()
    restarted = spawn_flaky(sc, interval)
    sc.wait(restarted)

    retried = [a for a in sc.ledger.attempts() if (a.instance, a.step) == (WID, 0)]
    assert [a.attempt for a in retried] == [1, 2], retried
    second = retried[1]
    fresh = restarted_at + interval  # the earliest a countdown begun by the restarted process could end
    print(
        f"failed at {failed_at:.3f}; recorded next attempt at {next_at:.3f} (+{next_at - failed_at:.3f});"
        f" killed, restarted at {restarted_at:.3f} (a fresh backoff would end at {fresh:.3f});"
        f" attempt 2 started at {second.started:.3f} ({second.started - next_at:+.3f} s from the recorded time)"
    )
    assert fresh - next_at >= 0.4, "restarted too early to tell the recorded time from a fresh countdown"
    assert second.started >= next_at - 0.01, "attempt 2 ran before its recorded time"
    assert second.started < fresh, "attempt 2 waited for a fresh backoff from the restart"
    # When the restarted process could run it: the recorded time, or its recovery if that came later.
    ready_at = sc.ledger.start_time(WID, restarted.pid)
    due = max(next_at, ready_at)
    assert second.started <= due + 0.35, (
        f"attempt 2 started {second.started - due:.3f} s after it was due (recorded time or recovery)"
    )

    check = Checker(sc)
    history = check.state.histories[WID]
    assert history[0].attempts == 2, f"the journal counts {history[0].attempts} attempts of step 0, not 2"
    assert_clean(check, check.run())
