"""SIGKILL and crash points in actor calls: nothing is lost, nothing is applied twice.

The workloads are in ``actor_worker.py``: a real executor process on a real
SQLite file, killed and started again with the same command.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from .harness import CRASHED, Worker, eventually

ACTOR_WORKER = Path(__file__).with_name("actor_worker.py")
POINTS = (
    "journal.before_commit",
    "journal.after_commit_before_ack",
    "actor.after_state_commit",
    "dispatch.after_claim",
)


def spawn(tmp_path: Path, mode: str, *args: str) -> Worker:
    n = len(list(tmp_path.glob("worker-*.log")))
    argv = ["--db", str(tmp_path / "actors.db"), "--done", str(tmp_path / "done.json"), "--mode", mode, *args]
    return Worker(argv, tmp_path / f"worker-{n}.log", script=ACTOR_WORKER)


def summary(tmp_path: Path) -> dict[str, Any]:
    data = json.loads((tmp_path / "done.json").read_text())
    assert isinstance(data, dict)
    return data


def test_sigkill_between_the_history_call_and_clearing_the_cart(tmp_path: Path) -> None:
    pause = tmp_path / "paused"
    worker = spawn(tmp_path, "checkout", "--pause", str(pause))
    eventually(pause.exists, 60, what="the checkout pausing between its two steps", worker=worker)
    assert worker.kill() == -signal.SIGKILL
    assert not (tmp_path / "done.json").exists()

    again = spawn(tmp_path, "checkout")
    assert again.wait(60) == 0, again.output()
    done = summary(tmp_path)
    assert done["result"] == 1  # the first and only order
    assert done["cart"] == {"user_id": "u1", "items": []}
    items = [{"sku": f"sku-{i}", "qty": i + 1} for i in range(3)]
    assert done["history"] == {"orders": [items]}  # recorded exactly once


SEEDS = range(12) if os.environ.get("PERDURE_SLOW") else range(3)


def run_until_done(tmp_path: Path, seed: int, mode: str, *args: str) -> int:
    """Run the workload with two random crash points armed (8 times at most), then clean runs,
    until it finishes; how many runs crashed."""
    rng = random.Random(seed)
    for attempt in range(12):
        spec = ",".join(f"{p}:{rng.choice((0.05, 0.1, 0.15))}" for p in rng.sample(POINTS, 2))
        armed = attempt < 8  # then clean runs, to finish
        extra = ["--crashpoint", spec, "--seed", str(rng.randrange(2**31))] if armed else []
        worker = spawn(tmp_path, mode, *args, *extra)
        code = worker.wait(120)
        if code == 0:
            return attempt  # every run before this one crashed
        assert code in CRASHED, f"seed {seed}: exit {code}\n{worker.output()}"
    pytest.fail(f"seed {seed}: the workload never finished")


@pytest.mark.parametrize("seed", SEEDS)
def test_calls_apply_exactly_once_under_random_crash_points(tmp_path: Path, seed: int) -> None:
    """A property over seeds: whatever crash points fire, every counter equals the calls made."""
    workflows, calls, keys = 4, 10, 3
    args = ["--workflows", str(workflows), "--calls", str(calls), "--keys", str(keys)]
    crashes = run_until_done(tmp_path, seed, "counters", *args)
    done = summary(tmp_path)
    assert done["results"] == [calls] * workflows
    expected = {f"k{k}": 0 for k in range(keys)}
    for w in range(workflows):
        for c in range(calls):
            expected[f"k{(w + c) % keys}"] += 1
    assert done["counters"] == expected, f"seed {seed}, {crashes} crashes"
    assert crashes > 0, f"seed {seed}: no crash point fired; the run proved nothing"


def test_sigkill_while_a_call_waits_in_its_mailbox(tmp_path: Path) -> None:
    """The call has taken the first half of the messages and waits for the rest when the
    process dies; the next process sends the rest and the call ends with each one once."""
    pause = tmp_path / "paused"
    worker = spawn(tmp_path, "mailbox", "--calls", "6", "--pause", str(pause))
    eventually(pause.exists, 60, what="the feed pausing halfway", worker=worker)
    assert worker.kill() == -signal.SIGKILL
    again = spawn(tmp_path, "mailbox", "--calls", "6")
    assert again.wait(60) == 0, again.output()
    done = summary(tmp_path)
    assert done["result"] == list(range(6))
    assert done["state"] == {"seen": list(range(6))}
    assert done["left"] == 0


@pytest.mark.parametrize("seed", SEEDS)
def test_mailbox_messages_are_sent_and_taken_once_under_random_crash_points(
    tmp_path: Path, seed: int
) -> None:
    crashes = run_until_done(tmp_path, seed, "mailbox", "--calls", "8")
    done = summary(tmp_path)
    assert (done["result"], done["left"]) == (list(range(8)), 0), f"seed {seed}, {crashes} crashes"
    assert done["state"] == {"seen": list(range(8))}
    assert crashes > 0, f"seed {seed}: no crash point fired; the run proved nothing"


@pytest.mark.parametrize(
    ("point", "recorded"), [("actor.direct_mid_commit", 4), ("actor.after_state_commit", 5)]
)
def test_a_crash_in_a_direct_call_keeps_state_and_record_together(
    tmp_path: Path, point: str, recorded: int
) -> None:
    """The fifth direct call dies inside its commit (nothing of it lands) or right after it
    (all of it lands, unanswered): either way each counter equals its recorded calls."""
    acks = tmp_path / "acks.txt"
    crashing = spawn(tmp_path, "direct", "--calls", "12", "--keys", "3", "--acks", str(acks),
                     "--crashpoint", f"{point}@5")  # fmt: skip
    assert crashing.wait(60) in CRASHED, crashing.output()
    assert acks.read_text().split() == ["k0", "k1", "k2", "k0"]  # the fifth call was never answered

    after = spawn(tmp_path, "direct", "--calls", "0", "--acks", str(acks))
    assert after.wait(60) == 0, after.output()
    done = summary(tmp_path)
    assert sum(done["counters"].values()) == recorded
    assert done["counters"] == done["completed"] == done["invocations"]
    with sqlite3.connect(tmp_path / "actors.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
