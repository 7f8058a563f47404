"""A process is killed (SIGKILL) halfway through 20 workflows; a new one finishes them.

    python examples/crash_recovery.py

Each step appends one line to a side file outside the database, so we can count
how often each step really ran. After the restart every workflow completes,
and no step whose result had been recorded runs again: only the steps that were
in flight at the moment of the kill may run twice.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import perdure

WORKFLOWS, STEPS = 20, 10


@perdure.step
def work(order: str, n: int) -> int:
    time.sleep(0.02)  # stands in for an API call
    with open(os.environ["PERDURE_EXAMPLE_SIDE"], "a") as f:
        f.write(f"{order}:{n}\n")
    return n * n


@perdure.workflow
def process_order(order: str) -> int:
    return sum(work(order, n) for n in range(STEPS))


def child(db: str) -> None:
    """Start (or find again) all the workflows and wait for them."""
    with perdure.Engine(f"sqlite:///{db}") as engine:
        handles = [engine.start(process_order, f"order-{i}", id=f"order-{i}") for i in range(WORKFLOWS)]
        total = sum(h.result(timeout=120) for h in handles)
        print(f"  [pid {os.getpid()}] all {WORKFLOWS} workflows completed, total {total}", flush=True)


def lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="perdure-example-"))
    db, side = tmp / "orders.db", tmp / "side-effects.txt"
    env = dict(os.environ, PERDURE_EXAMPLE_SIDE=str(side))
    cmd = [sys.executable, __file__, "--child", str(db)]

    print(f"1. starting {WORKFLOWS} workflows x {STEPS} steps in a child process")
    proc = subprocess.Popen(cmd, env=env)
    deadline = time.monotonic() + 60
    while len(lines(side)) < WORKFLOWS * STEPS // 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    at_kill = len(lines(side))
    print(f"2. SIGKILLed it after {at_kill} of {WORKFLOWS * STEPS} step executions")

    with perdure.Engine(f"sqlite:///{db}", executor=False) as client:
        recorded = {
            f"{info.id}:{e.input['args'][1]}"
            for info in client.list(limit=1000).items
            for e in client.history(info.id)
        }
    print(f"   the journal had recorded {len(recorded)} step results")

    print("3. restarting: the new process recovers what was running")
    subprocess.run(cmd, env=env, check=True)

    counts = collections.Counter(lines(side))
    rerun_after_record = sorted(k for k in recorded if counts[k] > 1)
    twice = sorted(k for k, c in counts.items() if c > 1)
    missing = WORKFLOWS * STEPS - len(counts)
    print(
        f"4. steps never run: {missing}; recorded steps run again: {len(rerun_after_record)}; "
        f"steps run twice (in flight at the kill): {len(twice)} {twice}"
    )
    if missing or rerun_after_record:
        sys.exit("recovery broke a promise")
    print("   nothing lost, nothing recorded done twice")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2])
    else:
        main()
