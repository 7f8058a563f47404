"""The scenario worker for workflow time and messaging: a real executor process to SIGKILL.

    python tests/scenario/time_worker.py --db PATH --marks PATH --done PATH --mode MODE [options]

Modes (each starts its workflows under fixed ids, so a restart of the same
command finds them again, waits for every result and writes them, as JSON, to
``--done``):

- ``waits``: ``nap`` / ``nap-def`` sleep ``--duration`` seconds (``async def`` /
  ``def``; in memory, as the duration is below ``unload_after``); ``listen`` /
  ``listen-def`` receive on a topic nobody sends to, with that timeout (unloaded).
  Each then runs the step ``woke``, which marks the time it ran.
- ``inbox``: ``inbox`` receives on ``jobs`` until the value ``"end"``, passing each
  value through the step ``got`` (marked); returns the values in receipt order.
- ``children``: ``parent-0`` ... ``parent-{N-1}`` each start one ``kid`` child
  (default id), then run the step ``hold`` (marked), which blocks for good with
  ``--hold``: the kill comes while it blocks, just after the child's start
  committed. Each returns its child's result.

The MARKS file is a SQLite file outside the engine's database: steps write a row
(kind, instance, pid, time, value) on their own connection when they run, and
each process marks its start (kind ``run``) before it opens the engine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import perdure
from perdure._runtime.clock import SystemClock

MARKS_SCHEMA = """
CREATE TABLE IF NOT EXISTS marks (
    kind     TEXT NOT NULL,
    instance TEXT NOT NULL,
    pid      INTEGER NOT NULL,
    at       REAL NOT NULL,
    value    TEXT
);
"""
WAITERS = ("nap", "nap-def", "listen", "listen-def")
clock = SystemClock()


def connect_marks(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30.0, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout = 30000")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.executescript(MARKS_SCHEMA)
    return conn


def parent_id(n: int) -> str:
    return f"parent-{n}"


class Marks:
    """The worker's side of the marks file: one connection per thread."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.pid = os.getpid()
        self._local = threading.local()

    def mark(self, kind: str, instance: str, value: Any = None) -> float:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect_marks(self.path)
        at = clock.now()
        conn.execute(
            "INSERT INTO marks (kind, instance, pid, at, value) VALUES (?, ?, ?, ?, ?)",
            (kind, instance, self.pid, at, json.dumps(value)),
        )
        return at


class Options(argparse.Namespace):
    db: str
    marks: str
    done: str
    mode: str
    duration: float
    parents: int
    hold: bool


def parse(argv: Sequence[str]) -> Options:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--db", required=True, help="the engine's SQLite file")
    p.add_argument("--marks", required=True, help="the SQLite file the steps mark")
    p.add_argument("--done", required=True, help="where to write the results when all are done")
    p.add_argument("--mode", required=True, choices=["waits", "inbox", "children"])
    p.add_argument("--duration", type=float, default=3.0, help="waits: seconds each workflow waits")
    p.add_argument("--parents", type=int, default=5, help="children: how many parents")
    p.add_argument("--hold", action="store_true", help="children: the step after the start blocks")
    return p.parse_args(argv, namespace=Options())


def define(opts: Options, marks: Marks) -> perdure.Registry:
    """The workflows and steps of every mode, in their own registry."""
    registry = perdure.Registry()
    define_waits(registry, marks)
    define_messages_and_children(registry, marks, hold_forever=opts.hold)
    return registry


def define_waits(registry: perdure.Registry, marks: Marks) -> None:
    @perdure.step(registry=registry)
    def woke(instance: str) -> float:
        return marks.mark("woke", instance)

    @perdure.workflow(name="nap", registry=registry)
    async def nap(instance: str, seconds: float) -> float:
        await perdure.sleep(seconds)
        at: float = await woke(instance)
        return at

    @perdure.workflow(name="nap-def", registry=registry)
    def nap_def(instance: str, seconds: float) -> float:
        perdure.sleep(seconds)
        return woke(instance)

    @perdure.workflow(name="listen", registry=registry)
    async def listen(instance: str, seconds: float) -> float:
        assert await perdure.recv("never", timeout=seconds) is None
        at: float = await woke(instance)
        return at

    @perdure.workflow(name="listen-def", registry=registry)
    def listen_def(instance: str, seconds: float) -> float:
        assert perdure.recv("never", timeout=seconds) is None
        return woke(instance)


def define_messages_and_children(registry: perdure.Registry, marks: Marks, *, hold_forever: bool) -> None:
    @perdure.step(registry=registry)
    def got(value: Any) -> None:
        marks.mark("got", "inbox", value)

    @perdure.step(registry=registry)
    def hold(instance: str, kid: str) -> None:
        marks.mark("hold", instance, kid)
        if hold_forever:
            threading.Event().wait()  # stands in for a call that hangs until the process dies

    @perdure.workflow(name="inbox", registry=registry)
    async def inbox() -> list[Any]:
        received = []
        while (value := await perdure.recv("jobs")) != "end":
            await got(value)
            received.append(value)
        return received

    @perdure.workflow(name="kid", registry=registry)
    async def kid(n: int) -> int:
        return n * n

    @perdure.workflow(name="parent", registry=registry)
    async def parent(instance: str, n: int) -> list[Any]:
        child = await perdure.start_child(kid, n)
        await hold(instance, child.id)
        return [child.id, await child.result()]


def plan(opts: Options) -> list[tuple[str, str, tuple[Any, ...]]]:
    """What ``opts.mode`` starts: (id, workflow name, arguments)."""
    if opts.mode == "waits":
        return [(wid, wid, (wid, opts.duration)) for wid in WAITERS]
    if opts.mode == "inbox":
        return [("inbox", "inbox", ())]
    return [(parent_id(n), "parent", (parent_id(n), n)) for n in range(opts.parents)]


async def run(opts: Options) -> int:
    marks = Marks(opts.marks)
    marks.mark("run", "")
    registry = define(opts, marks)
    async with perdure.Engine(f"sqlite:///{opts.db}", registry=registry, poll_interval=0.05) as engine:
        handles = [await engine.start(name, *args, id=wid) for wid, name, args in plan(opts)]
        results = await asyncio.gather(*(h.result(timeout=60) for h in handles), return_exceptions=True)
    failed = {h.id: repr(r) for h, r in zip(handles, results, strict=True) if isinstance(r, BaseException)}
    if failed:
        print(f"[time worker {marks.pid}] not completed: {failed}", file=sys.stderr, flush=True)
        return 1
    done = {h.id: r for h, r in zip(handles, results, strict=True)}
    await asyncio.to_thread(Path(opts.done).write_text, json.dumps(done, sort_keys=True))
    print(f"[time worker {marks.pid}] all {len(handles)} workflows completed", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(parse(sys.argv[1:] if argv is None else argv)))


if __name__ == "__main__":
    sys.exit(main())
