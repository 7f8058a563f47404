"""SIGKILL an executor while workflows sleep, receive, take messages and start children.

The workloads are in ``time_worker.py``: a real executor process on a real
SQLite file, killed with SIGKILL at a condition and started again with the same
command. Times compared here are all read from the same (system) clock: the
deadlines the engine recorded, the time each worker process started, and the
time the step after each wait ran (the MARKS file).
"""

from __future__ import annotations

import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

import perdure

from .harness import Checker, MakeScenario, Scenario, Worker, assert_clean, clock, eventually
from .time_worker import WAITERS, connect_marks, parent_id

TIME_WORKER = Path(__file__).with_name("time_worker.py")


class Run:
    """One scenario of ``time_worker.py`` processes: spawn, kill, read the marks and results."""

    def __init__(self, sc: Scenario, mode: str, *extra: str) -> None:
        self.sc = sc
        self.mode = mode
        self.extra = list(extra)
        self.marks_path = sc.dir / "marks.db"
        connect_marks(self.marks_path).close()

    def spawn(self, *more: str) -> Worker:
        args = [
            *("--db", str(self.sc.db), "--marks", str(self.marks_path), "--done", str(self.sc.done)),
            *("--mode", self.mode, *self.extra, *more),
        ]
        worker = Worker(args, self.sc.dir / f"worker-{len(self.sc.workers)}.log", script=TIME_WORKER)
        self.sc.workers.append(worker)
        return worker

    def kill(self, worker: Worker) -> None:
        assert worker.kill() == -signal.SIGKILL, f"worker {worker.pid} ended before it could be killed"
        self.sc.snapshot()

    def marks(self, kind: str) -> list[tuple[str, int, float, Any]]:
        """(instance, pid, time, value) of the marks of ``kind``, in the order written."""
        conn = connect_marks(self.marks_path)
        try:
            rows = conn.execute(
                "SELECT instance, pid, at, value FROM marks WHERE kind = ? ORDER BY rowid", (kind,)
            ).fetchall()
        finally:
            conn.close()
        return [(str(i), int(p), float(a), json.loads(v)) for i, p, a, v in rows]

    def started(self, worker: Worker) -> float:
        """When process ``worker`` started (before it opened the engine)."""
        times = [at for _, pid, at, _ in self.marks("run") if pid == worker.pid]
        assert times, f"worker {worker.pid} never marked its start\n{worker.output()}"
        return times[0]

    def results(self) -> dict[str, Any]:
        data = json.loads(self.sc.done.read_text())
        assert isinstance(data, dict)
        return data

    def check(self, ids: list[str]) -> None:
        """No acknowledged start lost, journals contiguous and unchanged since each kill, files clean."""
        checker = Checker(self.sc, expected=ids)
        assert_clean(
            checker,
            {
                "C1": checker.c1_acknowledged_starts_ended_or_parked(),
                "C2": checker.c2_journals_contiguous_and_unchanged(),
                "C7": checker.c7_databases_clean() + _integrity(self.marks_path),
            },
        )


def _integrity(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [f"{path.name}: {r[0]}" for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"]
    finally:
        conn.close()


def deadlines(sc: Scenario) -> dict[str, float]:
    """The wake-up deadline each waiting workflow recorded (its sleep, or its receive timeout)."""
    found: dict[str, float] = {}
    with sc.client() as client:
        for wid in WAITERS:
            try:
                history = client.history(wid)
            except perdure.NotFound:
                continue
            for e in history:
                if e.kind in ("sleep", "deadline"):
                    found[wid] = float(e.result)
    return found


@pytest.mark.parametrize("restart", ["before the deadline", "after the deadline"])
def test_a_sleep_or_receive_killed_midway_wakes_at_its_original_deadline(
    make_scenario: MakeScenario, restart: str
) -> None:
    duration = 3.0 if restart == "before the deadline" else 1.5
    run = Run(make_scenario(0, 0), "waits", "--duration", str(duration))
    first = run.spawn()
    eventually(
        lambda: len(deadlines(run.sc)) == len(WAITERS),
        timeout=30,
        what="every workflow to record its deadline",
        seen=lambda: deadlines(run.sc),
        worker=first,
    )
    due = deadlines(run.sc)
    if restart == "before the deadline":
        # Kill one second into the waits: a restart that waited the whole duration again
        # would wake a second or more after the recorded deadline.
        eventually(
            lambda: clock.now() >= min(due.values()) - duration + 1.0, timeout=30, what="1 s of waiting"
        )
        run.kill(first)
        assert clock.now() < min(due.values()), "the kill came after the deadline"
    else:
        run.kill(first)
        eventually(lambda: clock.now() > max(due.values()), timeout=30, what="the deadlines to pass")
    second = run.spawn()
    run.sc.wait(second, timeout=60)

    restarted = run.started(second)
    woke = {wid: (pid, at) for wid, pid, at, _ in run.marks("woke")}
    assert sorted(woke) == sorted(WAITERS), f"woke: {woke}"
    assert deadlines(run.sc) == due, "the recorded deadlines did not change"
    for wid, (pid, at) in sorted(woke.items()):
        assert pid == second.pid, f"{wid} woke in pid {pid}, before the kill"
        assert at >= due[wid], f"{wid} woke at {at}, before its deadline {due[wid]}"
        assert at < restarted + duration, (
            f"{wid} woke at {at}: {at - restarted:.3f}s after the restart, as if it waited the whole"
            f" {duration}s again; its deadline was {due[wid]} ({due[wid] - restarted:+.3f}s from the restart)"
        )
    assert run.results() == {wid: at for wid, (_, at) in woke.items()}
    run.check(list(WAITERS))


def test_messages_sent_while_no_executor_runs_are_delivered_once_in_order_after_restart(
    make_scenario: MakeScenario,
) -> None:
    run = Run(make_scenario(0, 0), "inbox")
    first = run.spawn()
    sent: list[str] = []
    with run.sc.client() as client:
        eventually(
            lambda: bool(client.list(name="inbox").items), timeout=30, what="the inbox to start", worker=first
        )
        for n in range(5):
            client.send("inbox", "jobs", f"m{n}", idempotency_key=f"k{n}")
            sent.append(f"m{n}")
        eventually(
            lambda: len(run.marks("got")) >= 3,
            timeout=30,
            what="3 messages processed",
            seen=lambda: run.marks("got"),
            worker=first,
        )
        run.kill(first)

        # No executor runs now: these wait in the database.
        for n in range(5, 20):
            key = f"k{n}" if n % 2 else None  # with and without idempotency keys
            client.send("inbox", "jobs", f"m{n}", idempotency_key=key)
            sent.append(f"m{n}")
        client.send("inbox", "jobs", "m2 again", idempotency_key="k2")  # a client retry: dropped
        client.send("inbox", "jobs", "m7 again", idempotency_key="k7")
        client.send("inbox", "jobs", "end")
        assert client.info("inbox").status is not perdure.Status.COMPLETED

    second = run.spawn()
    run.sc.wait(second, timeout=60)

    assert run.results() == {"inbox": sent}, "every message once, in send order"
    with run.sc.client() as client:
        received = [e.result for e in client.history("inbox") if e.kind == "recv"]
    assert received == [*sent, "end"]
    assert {v for _, _, _, v in run.marks("got")} == set(sent)
    run.check(["inbox"])


def test_a_child_started_just_before_a_sigkill_exists_exactly_once_after_restart(
    make_scenario: MakeScenario,
) -> None:
    parents = 5
    run = Run(make_scenario(0, 0), "children", "--parents", str(parents))
    first = run.spawn("--hold")
    eventually(
        lambda: len(run.marks("hold")) >= parents,
        timeout=30,
        what="every parent to start its child and block in the next step",
        seen=lambda: run.marks("hold"),
        worker=first,
    )
    run.kill(first)
    started = {inst: kid for inst, _, _, kid in run.marks("hold")}

    run.sc.wait(run.spawn(), timeout=60)

    ids = [parent_id(n) for n in range(parents)]
    assert run.results() == {parent_id(n): [started[parent_id(n)], n * n] for n in range(parents)}
    with run.sc.client() as client:
        kids = {info.id: info.status for info in client.list(name="kid").items}
        starts = {wid: [e.result for e in client.history(wid) if e.kind == "child"] for wid in ids}
    assert kids == dict.fromkeys(started.values(), perdure.Status.COMPLETED), "one child per parent"
    assert starts == {wid: [started[wid]] for wid in ids}, "each parent recorded one child start"
    run.check([*ids, *started.values()])
