"""The scenario worker: a real executor process for crash tests.

    python tests/scenario/worker.py --db PATH|URL --ledger PATH --workflows N --steps M [--crashpoint SPEC]

It starts ``N`` ``chain`` workflows (``async def``; ``def`` with ``--sync-workflow``)
with fixed ids (``wf-0`` ... ``wf-{N-1}``; starting is idempotent, so a restart of
the same command finds them again),
waits for every result and writes them, as JSON, to the done marker
(``LEDGER.done`` unless ``--done`` names it). A restart of the same command
on the same database recovers what a killed run left and finishes everything.

Every step execution writes to the effect LEDGER, a SQLite file outside the
engine's database, on its own connection: an ``attempts`` row when it starts
(ended when it returns or raises) and an ``effects`` row keyed by
``perdure.idempotency_key()`` (insert-or-ignore). Step values are a pure
function of the inputs (``step_value``), so the expected outputs are known
(``expected_output``).

This file is self-contained on purpose: it runs as a script, and the harness
imports its ledger schema and model from here.

Exit status: 0 all done; 3 closed early (``--close-after``); 1 a workflow did not
complete; 137 an armed crash point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import perdure
from perdure._runtime.clock import SystemClock

LEDGER_SCHEMA = """
CREATE TABLE IF NOT EXISTS attempts (
    instance        TEXT NOT NULL,
    step            INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    pid             INTEGER NOT NULL,
    started         REAL NOT NULL,
    ended           REAL,
    outcome         TEXT,
    idempotency_key TEXT NOT NULL,
    PRIMARY KEY (instance, step, attempt)
);
CREATE TABLE IF NOT EXISTS effects (
    idempotency_key TEXT PRIMARY KEY,
    instance        TEXT NOT NULL,
    step            INTEGER NOT NULL,
    value           INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS starts (
    instance TEXT NOT NULL,
    pid      INTEGER NOT NULL,
    at       REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    pid        INTEGER PRIMARY KEY,
    started    REAL NOT NULL,
    crashpoint TEXT,
    ended      REAL
);
"""
"""``attempts``: one row per step execution (``attempt`` counts from 1 per step, across
processes; ``ended``/``outcome`` stay NULL if the process died in it). ``effects``: one
row per idempotency key, insert-or-ignore. ``starts``: acknowledged starts.
``runs``: one row per worker process."""

WORKFLOW = "chain"
STEP = "work"
clock = SystemClock()


def workflow_id(n: int) -> str:
    return f"wf-{n}"


def step_value(instance: str, step: int, acc: int) -> int:
    """What step ``step`` of ``instance`` returns given the previous value: a pure function."""
    return (acc * 1_000_003 + zlib.crc32(f"{instance}:{step}".encode())) % 2_147_483_647


def expected_output(instance: str, steps: int) -> int:
    """The model: what ``chain(instance, steps)`` returns."""
    acc = 0
    for i in range(steps):
        acc = step_value(instance, i, acc)
    return acc


def connect_ledger(path: str | Path) -> sqlite3.Connection:
    """A ledger connection (autocommit; explicit transactions), creating the schema if needed."""
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")  # survives process crashes, which is all we cause
    conn.executescript(LEDGER_SCHEMA)
    return conn


class LedgerWriter:
    """The worker's side of the ledger: one connection per thread, never the engine's."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()
        self.pid = os.getpid()

    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect_ledger(self.path)
        return conn

    def begin_attempt(self, instance: str, step: int, key: str) -> int:
        """Record that an execution of the step starts now; its attempt number (1-based)."""
        started = clock.now()  # before waiting for the ledger's lock: a pause there is part of the step
        c = self.conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            (done,) = c.execute(
                "SELECT count(*) FROM attempts WHERE instance = ? AND step = ?", (instance, step)
            ).fetchone()
            c.execute(
                "INSERT INTO attempts (instance, step, attempt, pid, started, idempotency_key)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (instance, step, done + 1, self.pid, started, key),
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise
        return int(done) + 1

    def end_attempt(self, instance: str, step: int, attempt: int, key: str, value: int | None) -> None:
        """The execution returned ``value`` (its effect is applied once per key) or failed (None)."""
        c = self.conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            if value is not None:
                c.execute(
                    "INSERT OR IGNORE INTO effects (idempotency_key, instance, step, value) VALUES (?, ?, ?, ?)",
                    (key, instance, step, value),
                )
            c.execute(
                "UPDATE attempts SET ended = ?, outcome = ? WHERE instance = ? AND step = ? AND attempt = ?",
                (clock.now(), "ok" if value is not None else "error", instance, step, attempt),
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    def record(self, sql: str, params: Sequence[object]) -> None:
        self.conn().execute(sql, params)


class InjectedFailure(Exception):
    """Raised by a step on purpose (``--fail-step``), to exercise durable retries."""


class Options(argparse.Namespace):
    db: str
    ledger: str
    workflows: int
    steps: int
    crashpoint: str | None
    done: str | None
    step_sleep: float
    fail_step: int
    fail_attempts: int
    retry_interval: float
    close_after: int
    close_grace: float
    poll_interval: float
    result_timeout: float
    max_recoveries: int
    seed: int | None
    sync_workflow: bool
    start_only: bool
    max_active: int
    lease_ttl: float


def parse(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--db", required=True, help="the engine's SQLite file, or a postgresql:// URL")
    p.add_argument("--ledger", required=True, help="the effect ledger's SQLite file")
    p.add_argument("--workflows", type=int, required=True)
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--crashpoint", help="PERDURE_CRASHPOINT for this process, e.g. journal.before_commit@5")
    p.add_argument("--done", help="where to write the results when all are done (default LEDGER.done)")
    p.add_argument("--step-sleep", type=float, default=0.0, help="seconds each step takes")
    p.add_argument("--fail-step", type=int, default=-1, help="this step index fails its first attempts")
    p.add_argument("--fail-attempts", type=int, default=0, help="how many attempts of --fail-step fail")
    p.add_argument("--retry-interval", type=float, default=0.05, help="the steps' retry backoff (fixed)")
    p.add_argument("--close-after", type=int, default=0, help="close the engine after this many attempts")
    p.add_argument(
        "--close-grace", type=float, default=10.0, help="seconds --close-after lets instances drain"
    )
    p.add_argument("--poll-interval", type=float, default=0.1)
    p.add_argument("--result-timeout", type=float, default=120.0)
    p.add_argument("--max-recoveries", type=int, default=10, help="crash recoveries before poison parking")
    p.add_argument("--sync-workflow", action="store_true", help="a def workflow (its steps run inline)")
    p.add_argument(
        "--start-only", action="store_true", help="a client: start the workflows, run none, exit 0"
    )
    p.add_argument("--max-active", type=int, default=1000, help="instances this executor drives at once")
    p.add_argument("--lease-ttl", type=float, default=10.0, help="seconds the executor lease lasts")
    p.add_argument(
        "--seed", type=int, help="PERDURE_SEED for this process (drives probabilistic crash points)"
    )
    return p.parse_args(argv, namespace=Options())


def define(opts: Options, ledger: LedgerWriter, attempted: threading.Semaphore) -> perdure.Registry:
    """The workflow and step under test, in their own registry."""
    registry = perdure.Registry()
    policy = perdure.RetryPolicy(
        max_attempts=opts.fail_attempts + 3,
        initial_interval=opts.retry_interval,
        backoff=1.0,
        max_interval=opts.retry_interval,
    )

    @perdure.step(name=STEP, retry=policy, registry=registry)
    def work(instance: str, step: int, acc: int) -> int:
        key = perdure.idempotency_key()
        attempt = ledger.begin_attempt(instance, step, key)
        attempted.release()
        if opts.step_sleep:
            time.sleep(opts.step_sleep)  # stands in for a call to the outside world
        if step == opts.fail_step and attempt <= opts.fail_attempts:
            ledger.end_attempt(instance, step, attempt, key, None)
            raise InjectedFailure(f"{instance} step {step} attempt {attempt} fails on purpose")
        value = step_value(instance, step, acc)
        ledger.end_attempt(instance, step, attempt, key, value)
        return value

    if opts.sync_workflow:

        @perdure.workflow(name=WORKFLOW, registry=registry)
        def chain_sync(instance: str, steps: int) -> int:
            acc = 0
            for i in range(steps):
                acc = work(instance, i, acc)  # a def workflow gets the value itself
            return acc

    else:

        @perdure.workflow(name=WORKFLOW, registry=registry)
        async def chain(instance: str, steps: int) -> int:
            acc = 0
            for i in range(steps):
                acc = await work(instance, i, acc)
            return acc

    return registry


async def close_when(attempted: threading.Semaphore, count: int) -> None:
    """Return once ``count`` step executions have started in this process."""
    loop = asyncio.get_running_loop()
    for _ in range(count):
        await loop.run_in_executor(None, attempted.acquire)


async def run(opts: Options) -> int:
    ledger = LedgerWriter(opts.ledger)
    ledger.record(
        "INSERT OR REPLACE INTO runs (pid, started, crashpoint) VALUES (?, ?, ?)",
        (ledger.pid, clock.now(), opts.crashpoint),
    )
    attempted = threading.Semaphore(0)
    registry = define(opts, ledger, attempted)
    engine = perdure.Engine(
        opts.db if "://" in opts.db else f"sqlite:///{opts.db}",
        registry=registry,
        executor=not opts.start_only,
        poll_interval=opts.poll_interval,
        max_recoveries=opts.max_recoveries,
        max_active=opts.max_active,
        lease_ttl=opts.lease_ttl,
    )
    await engine.open()
    try:
        handles = []
        for n in range(opts.workflows):
            wid = workflow_id(n)
            handles.append(await engine.start(WORKFLOW, wid, opts.steps, id=wid))
            ledger.record(
                "INSERT INTO starts (instance, pid, at) VALUES (?, ?, ?)", (wid, ledger.pid, clock.now())
            )
        if opts.start_only:
            return 0
        if opts.close_after:
            await close_when(attempted, opts.close_after)
            await engine.close(opts.close_grace)
            return 3
        results = await asyncio.gather(
            *(h.result(timeout=opts.result_timeout) for h in handles), return_exceptions=True
        )
    finally:
        await engine.close()
    failed = {h.id: repr(r) for h, r in zip(handles, results, strict=True) if isinstance(r, BaseException)}
    if failed:
        print(f"[worker {ledger.pid}] not completed: {failed}", file=sys.stderr, flush=True)
        return 1
    done = {h.id: r for h, r in zip(handles, results, strict=True)}
    await asyncio.to_thread(
        Path(opts.done or f"{opts.ledger}.done").write_text, json.dumps(done, sort_keys=True)
    )
    ledger.record("UPDATE runs SET ended = ? WHERE pid = ?", (clock.now(), ledger.pid))
    print(f"[worker {ledger.pid}] all {len(handles)} workflows completed", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    opts = parse(sys.argv[1:] if argv is None else argv)
    if opts.crashpoint:
        os.environ["PERDURE_CRASHPOINT"] = opts.crashpoint  # read when the Engine is made
    else:
        os.environ.pop("PERDURE_CRASHPOINT", None)
    if opts.seed is not None:
        os.environ["PERDURE_SEED"] = str(opts.seed)
    return asyncio.run(run(opts))


if __name__ == "__main__":
    sys.exit(main())
