"""The crash-test harness: worker processes, the effect ledger, and the checker.

A scenario runs ``worker.py`` processes on one engine database, kills them
with SIGKILL (or lets an armed crash point kill them) at a condition, restarts
them, and then checks the promises of RELIABILITY.md against two witnesses:

- the engine's own database, read through the public API (``engine.list``,
  ``engine.info``, ``engine.history``) by a client with no executor;
- the effect LEDGER, a separate SQLite file that steps write on their own
  connection (``worker.LEDGER_SCHEMA``): what really ran, in which process, when,
  and under which idempotency key.

``Checker`` holds one check per promise; each returns a list of human-readable
violations (empty: the promise held) and ``Checker.summary`` says what was seen.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

import psycopg

import perdure
from perdure._runtime.clock import SystemClock

from .worker import connect_ledger, expected_output, workflow_id

WORKER = Path(__file__).with_name("worker.py")
CRASHED = frozenset({137, -signal.SIGKILL})
"""Exit statuses of a process that died abruptly: an armed crash point, or SIGKILL."""
ENDED = frozenset({perdure.Status.COMPLETED, perdure.Status.FAILED, perdure.Status.CANCELLED})
clock = SystemClock()
"""The engine's clock: ledger times and journal times are read from the same one."""


# --- waiting on conditions ---------------------------------------------------


def eventually(
    predicate: Callable[[], bool],
    timeout: float,
    *,
    what: str,
    seen: Callable[[], object] | None = None,
    worker: Worker | None = None,
) -> None:
    """Return once ``predicate()`` holds; fail after ``timeout`` seconds saying what was seen.

    If ``worker`` exits first, fail at once with its status and output: the
    condition can no longer be reached the way the test meant.
    """
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not predicate():
        if worker is not None and worker.poll() is not None:
            if predicate():
                return
            raise AssertionError(
                f"worker {worker.pid} exited with {worker.returncode} before {what}; "
                f"seen: {seen() if seen else '-'}\n--- worker output ---\n{worker.output()}"
            )
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"timed out after {timeout}s waiting for {what}; seen: {seen() if seen else '-'}"
            )
        time.sleep(delay)  # polling inside a deadline, not synchronizing by sleeping
        delay = min(delay * 2, 0.02)


def holds_for(
    predicate: Callable[[], bool], seconds: float, *, what: str, seen: Callable[[], object]
) -> None:
    """Assert that ``predicate()`` stays true for ``seconds`` (for things that must NOT happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not predicate():
            raise AssertionError(f"{what} stopped holding; seen: {seen()}")
        time.sleep(0.02)  # sampling a property that must keep holding over the window
    if not predicate():
        raise AssertionError(f"{what} stopped holding; seen: {seen()}")


# --- worker processes --------------------------------------------------------


class Worker:
    """One ``worker.py`` process (or another worker ``script``); its output goes to a log file."""

    def __init__(self, args: list[str], log: Path, *, script: Path = WORKER) -> None:
        env = dict(os.environ)
        env.pop("PERDURE_CRASHPOINT", None)  # only --crashpoint arms one
        env["PYTHONUNBUFFERED"] = "1"
        self.args = args
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(script), *args], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self.pid = self.proc.pid

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode

    def poll(self) -> int | None:
        return self.proc.poll()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def kill(self) -> int:
        """SIGKILL it (if still running) and reap it; its exit status."""
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
        return self.proc.wait(timeout=30)

    def wait(self, timeout: float = 60.0) -> int:
        """Wait for it to exit by itself; fail (killing it) after ``timeout`` seconds."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"worker {self.pid} still running after {timeout}s\n--- output ---\n{self.output()}"
            ) from None

    @property
    def crashed(self) -> bool:
        return self.proc.returncode in CRASHED


# --- the ledger --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attempt:
    """One execution of a step, as the step itself recorded it."""

    instance: str
    step: int
    attempt: int
    pid: int
    started: float
    ended: float | None
    outcome: str | None
    key: str


class Ledger:
    """Read side of the effect ledger (the worker writes it)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        connect_ledger(path).close()  # create it, so it can be polled before a worker runs

    def _rows(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[Any, ...]]:
        conn = connect_ledger(self.path)
        try:
            return conn.execute(sql, params).fetchall()
        finally:
            conn.close()

    def write_lock_free(self) -> bool:
        """True if no process holds the ledger's write lock right now."""
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            conn.close()

    def count_attempts(self) -> int:
        return int(self._rows("SELECT count(*) FROM attempts")[0][0])

    def attempts(self) -> list[Attempt]:
        rows = self._rows(
            "SELECT instance, step, attempt, pid, started, ended, outcome, idempotency_key"
            " FROM attempts ORDER BY started"
        )
        return [Attempt(*r) for r in rows]

    def effects(self) -> list[tuple[str, str, int, int]]:
        """(idempotency_key, instance, step, value) rows."""
        rows = self._rows("SELECT idempotency_key, instance, step, value FROM effects")
        return [(str(k), str(i), int(s), int(v)) for k, i, s, v in rows]

    def starts(self, pid: int | None = None) -> set[str]:
        """Instances whose start was acknowledged (by process ``pid``, or by any)."""
        if pid is None:
            rows = self._rows("SELECT instance FROM starts")
        else:
            rows = self._rows("SELECT instance FROM starts WHERE pid = ?", (pid,))
        return {str(r[0]) for r in rows}

    def start_time(self, instance: str, pid: int) -> float:
        """When process ``pid`` had its start of ``instance`` acknowledged."""
        rows = self._rows("SELECT at FROM starts WHERE instance = ? AND pid = ?", (instance, pid))
        assert rows, f"process {pid} never acknowledged a start of {instance}"
        return float(rows[0][0])


def by_step(attempts: Iterable[Attempt]) -> dict[tuple[str, int], list[Attempt]]:
    """Attempts grouped by (instance, step), in the order given."""
    grouped: dict[tuple[str, int], list[Attempt]] = defaultdict(list)
    for a in attempts:
        grouped[a.instance, a.step].append(a)
    return dict(grouped)


# --- the engine's database, as the public API shows it ----------------------


@dataclass(frozen=True, slots=True)
class DbState:
    """Every instance and journal of a database at one moment."""

    infos: dict[str, perdure.WorkflowInfo]
    histories: dict[str, list[perdure.HistoryEntry]]

    def steps(self) -> dict[tuple[str, int], perdure.HistoryEntry]:
        """Recorded step outcomes by (instance, position); position is the step index in ``chain``."""
        return {(i, e.position): e for i, h in self.histories.items() for e in h if e.kind == "step"}

    def statuses(self) -> Counter[str]:
        return Counter(str(info.status) for info in self.infos.values())


def read_state(url: str) -> DbState:
    """Read everything through a client engine (no executor: it runs nothing)."""
    infos: dict[str, perdure.WorkflowInfo] = {}
    histories: dict[str, list[perdure.HistoryEntry]] = {}
    with perdure.Engine(url, executor=False) as client:
        cursor: str | None = None
        while True:
            page = client.list(limit=1000, cursor=cursor)
            for info in page.items:
                infos[info.id] = info
                histories[info.id] = client.history(info.id)
            cursor = page.cursor
            if cursor is None:
                break
    return DbState(infos=infos, histories=histories)


def _state(pid: int) -> str:
    """The process state letter in /proc (T: stopped)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2]


def retry_rows(db: Path) -> list[tuple[str, int, int, float]]:
    """The engine's durable retry states: (instance, position, attempts so far, next attempt at)."""
    if not db.exists():
        return []
    conn = sqlite3.connect(db, timeout=30.0)
    try:
        rows = conn.execute(
            "SELECT instance_id, position, attempts, next_at FROM retries ORDER BY 1, 2"
        ).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []  # the engine has not migrated the database yet
        raise
    finally:
        conn.close()
    return [(str(i), int(p), int(a), float(n)) for i, p, a, n in rows]


def integrity_violations(path: Path) -> list[str]:
    """C7 for one SQLite file: ``integrity_check`` and ``foreign_key_check`` clean."""
    conn = sqlite3.connect(path, timeout=30.0)
    try:
        integrity = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
        foreign = conn.execute("PRAGMA foreign_key_check").fetchall()
    finally:
        conn.close()
    out = [f"{path.name}: integrity_check: {line}" for line in integrity if line != "ok"]
    out += [f"{path.name}: foreign_key_check: {row}" for row in foreign]
    return out


# --- one scenario ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The database as a crash left it, and which worker processes had run by then."""

    state: DbState
    pids: frozenset[int]


REPLAY_FROM_THE_TOP = (
    "UPDATE instances SET status = 'pending', output = NULL, owner = NULL, wake_at = 0,"
    " recoveries = 0 WHERE status = 'completed'"
)
"""Completed instances made pending again, as if never run: a fresh run, not a recovery."""


def postgres_schema(url: str) -> tuple[str, str]:
    """The server URL and the schema of ``url``: the one its search_path option names (see
    ``in_schema`` in tests/conftest.py), else ``public``."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query)).get("options", "")
    schema = options.removeprefix("-csearch_path=") if options.startswith("-csearch_path=") else "public"
    return urlunsplit(parts._replace(query="")), schema


@dataclass
class Scenario:
    """One engine database, its ledger, and the worker processes run on them."""

    dir: Path
    workflows: int
    steps: int
    sync_workflow: bool = False
    """Run ``chain`` as a ``def`` workflow (steps inline in its thread) instead of ``async def``."""
    engine_url: str | None = None
    """The engine's database if not a SQLite file in ``dir`` (a PostgreSQL schema)."""
    workers: list[Worker] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)
    lease_losses: int = 0
    """Workers paused past their lease (zombies): each may have a step in flight that another
    executor runs again, like a crash (C4)."""

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ledger = Ledger(self.ledger_path)

    @property
    def db(self) -> Path:
        return self.dir / "engine.db"

    @property
    def ledger_path(self) -> Path:
        return self.dir / "ledger.db"

    @property
    def done(self) -> Path:
        return self.dir / "done.json"

    @property
    def url(self) -> str:
        return self.engine_url or f"sqlite:///{self.db}"

    @property
    def on_sqlite(self) -> bool:
        return self.engine_url is None

    @property
    def ids(self) -> list[str]:
        return [workflow_id(n) for n in range(self.workflows)]

    def spawn(
        self,
        *,
        crashpoint: str | None = None,
        step_sleep: float = 0.0,
        fail_step: int = -1,
        fail_attempts: int = 0,
        retry_interval: float = 0.05,
        close_after: int = 0,
        close_grace: float = 10.0,
        max_recoveries: int = 10,
        seed: int | None = None,
        done: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> Worker:
        """Start a worker on this scenario's database (options: see ``worker.py --help``)."""
        args = [
            *("--db", self.engine_url or str(self.db), "--ledger", str(self.ledger_path)),
            *("--done", str(done or self.done)),
            *("--workflows", str(self.workflows), "--steps", str(self.steps)),
            *("--step-sleep", str(step_sleep), "--retry-interval", str(retry_interval)),
            *("--fail-step", str(fail_step), "--fail-attempts", str(fail_attempts)),
            *("--close-after", str(close_after), "--close-grace", str(close_grace)),
            *("--max-recoveries", str(max_recoveries)),
            *extra,
        ]
        if crashpoint:
            args += ["--crashpoint", crashpoint]
        if seed is not None:
            args += ["--seed", str(seed)]
        if self.sync_workflow:
            args.append("--sync-workflow")
        worker = Worker(args, self.dir / f"worker-{len(self.workers)}.log")
        self.workers.append(worker)
        return worker

    def wait(self, worker: Worker, *, expect: int | frozenset[int] = 0, timeout: float = 60.0) -> int:
        """Wait for ``worker`` to exit by itself and check its status is ``expect``."""
        code = worker.wait(timeout)
        allowed = {expect} if isinstance(expect, int) else expect
        assert code in allowed, (
            f"worker {worker.pid} exited with {code}, expected {expect}\n{worker.output()}"
        )
        return code

    def kill_at(self, worker: Worker, executions: int, *, timeout: float = 60.0) -> Snapshot:
        """SIGKILL ``worker`` once the ledger holds ``executions`` step executions; snapshot the database."""
        eventually(
            lambda: self.ledger.count_attempts() >= executions,
            timeout=timeout,
            what=f"{executions} step executions in the ledger",
            seen=lambda: f"{self.ledger.count_attempts()} executions",
            worker=worker,
        )
        assert worker.kill() == -signal.SIGKILL, f"worker {worker.pid} ended before it could be killed"
        return self.snapshot()

    def pause(self, worker: Worker) -> None:
        """SIGSTOP ``worker`` (a zombie to be), at a moment it holds no ledger lock: stopped in a
        ledger write, it would stall every other worker's steps."""
        for _ in range(1000):
            os.kill(worker.pid, signal.SIGSTOP)
            eventually(lambda: _state(worker.pid) == "T", timeout=10, what=f"worker {worker.pid} stopped")
            if self.ledger.write_lock_free():
                self.lease_losses += 1
                return
            os.kill(worker.pid, signal.SIGCONT)
            eventually(self.ledger.write_lock_free, timeout=10, what="the worker's ledger write to end",
                       worker=worker)  # fmt: skip
        raise AssertionError(f"worker {worker.pid} always held the ledger lock when stopped")

    def snapshot(self) -> Snapshot:
        """Record the database as it is now (after a crash), for the no-rerun check."""
        snap = Snapshot(read_state(self.url), frozenset(w.pid for w in self.workers))
        self.snapshots.append(snap)
        return snap

    def frontier(self, snap: Snapshot) -> list[tuple[str, int]]:
        """Steps recorded at ``snap`` that their workflow had not moved past when the process died.

        Their record may be committed but unacknowledged: exactly the steps a recovery
        could wrongly run again.
        """
        started = {(a.instance, a.step) for a in self.ledger.attempts() if a.pid in snap.pids}
        return sorted(
            (wid, pos)
            for (wid, pos), _ in snap.state.steps().items()
            if (wid, pos + 1) not in started
            and not (pos == self.steps - 1 and snap.state.infos[wid].status in ENDED)
        )

    def crashes(self) -> int:
        return sum(1 for w in self.workers if w.crashed)

    def results(self) -> dict[str, int]:
        data = json.loads(self.done.read_text())
        assert isinstance(data, dict)
        return {str(k): int(v) for k, v in data.items()}

    @contextmanager
    def client(self) -> Iterator[perdure.SyncEngine]:
        """A client engine (no executor: it runs nothing) for polling and reading."""
        with perdure.Engine(self.url, executor=False) as client:
            yield client

    def stop(self) -> None:
        """Kill whatever still runs (test teardown)."""
        for w in self.workers:
            w.kill()


class MakeScenario(Protocol):
    """The ``make_scenario`` fixture."""

    def __call__(
        self, workflows: int, steps: int, *, sync_workflow: bool = False, engine_url: str | None = None
    ) -> Scenario: ...


# --- the checker -------------------------------------------------------------


class Checker:
    """The promises, checked after a scenario against the database and the ledger.

    ``crashes`` is how many worker processes died abruptly while work was in
    flight: each may have cut one execution of a step short, so it may add one
    attempt (C4).
    """

    def __init__(self, scenario: Scenario, *, expected: Iterable[str] | None = None) -> None:
        self.sc = scenario
        self.state = read_state(scenario.url)
        self.attempts = scenario.ledger.attempts()
        self.by_step = by_step(self.attempts)
        self.effects = scenario.ledger.effects()
        self.acknowledged = scenario.ledger.starts() | set(expected if expected is not None else scenario.ids)
        self.crashes = scenario.crashes() + scenario.lease_losses

    # C1 ---------------------------------------------------------------------

    def c1_acknowledged_starts_ended_or_parked(self) -> list[str]:
        out = []
        for wid in sorted(self.acknowledged):
            info = self.state.infos.get(wid)
            if info is None:
                out.append(f"C1: start of {wid} was acknowledged but there is no such instance")
            elif info.status not in ENDED and info.status is not perdure.Status.PARKED:
                out.append(f"C1: {wid} is {info.status}, neither terminal nor parked")
        return out

    # C2 ---------------------------------------------------------------------

    def c2_journals_contiguous_and_unchanged(self) -> list[str]:
        out = []
        for wid, history in sorted(self.state.histories.items()):
            positions = [e.position for e in history]
            if positions != list(range(len(history))):
                out.append(f"C2: journal of {wid} is not contiguous from 0: positions {positions}")
            for e in history:
                if e.ok == (e.error is not None):
                    out.append(f"C2: {wid}@{e.position} has ok={e.ok} and error={e.error}: not one result")
        for snap in self.sc.snapshots:
            for wid, before in snap.state.histories.items():
                after = {e.position: e for e in self.state.histories.get(wid, [])}
                out.extend(
                    f"C2: {wid}@{e.position} changed after it was committed: {e} became {after.get(e.position)}"
                    for e in before
                    if after.get(e.position) != e
                )
        return out

    # C3 ---------------------------------------------------------------------

    def c3_one_effect_per_completed_step(self) -> list[str]:
        out = []
        per_step = Counter((inst, step) for _, inst, step, _ in self.effects)
        values = {(inst, step): value for _, inst, step, value in self.effects}
        steps = self.state.steps()
        for (wid, pos), entry in sorted(steps.items()):
            if not entry.ok:
                continue
            n = per_step.get((wid, pos), 0)
            if n != 1:
                out.append(f"C3: completed step {wid}@{pos} has {n} effect rows, expected 1")
            elif values[wid, pos] != entry.result:
                out.append(f"C3: {wid}@{pos} recorded {entry.result} but its effect wrote {values[wid, pos]}")
        out.extend(
            f"C3: effect of {inst}@{step} has no recorded step"
            for inst, step in sorted(per_step)
            if (inst, step) not in steps
        )
        return out

    # C4 ---------------------------------------------------------------------

    def c4_attempts_bounded(self) -> list[str]:
        out = []
        steps = self.state.steps()
        for (wid, pos), attempts in sorted(self.by_step.items()):
            entry = steps.get((wid, pos))
            retries = entry.attempts - 1 if entry is not None else 0
            bound = 1 + self.crashes + retries
            if len(attempts) > bound:
                out.append(
                    f"C4: {wid}@{pos} ran {len(attempts)} times, more than 1 + {self.crashes} crashes"
                    f" + {retries} retries; pids {[a.pid for a in attempts]}"
                )
            if entry is None:
                continue
            recorded = entry.ended_at.timestamp()
            out.extend(
                f"C4: {wid}@{pos} attempt {a.attempt} (pid {a.pid}) started at {a.started:.6f},"
                f" after its journal record ended at {recorded:.6f}"
                for a in attempts
                if a.started > recorded
            )
        out.extend(self._no_overlapping_processes())
        return out

    def _no_overlapping_processes(self) -> list[str]:
        """Per instance, the processes that ran its steps take turns: none comes back after another."""
        out = []
        per_instance: dict[str, list[Attempt]] = defaultdict(list)
        for a in self.attempts:
            per_instance[a.instance].append(a)
        for wid, attempts in sorted(per_instance.items()):
            order: list[int] = []
            for a in sorted(attempts, key=lambda a: a.started):
                if order and order[-1] == a.pid:
                    continue
                if a.pid in order:
                    out.append(f"C4: {wid}: pid {a.pid} ran a step again after pid {order[-1]} took over")
                order.append(a.pid)
        return out

    # P4: never after the record; keys stable --------------------------------

    def p4_no_rerun_after_record(self) -> list[str]:
        """A step recorded when a crash left the database never runs in any later process."""
        out = []
        for n, snap in enumerate(self.sc.snapshots):
            for (wid, pos), entry in sorted(snap.state.steps().items()):
                later = [a for a in self.by_step.get((wid, pos), []) if a.pid not in snap.pids]
                if later:
                    out.append(
                        f"P4: {wid}@{pos} was recorded (ok={entry.ok}) before crash {n + 1} and ran again"
                        f" in pid(s) {[a.pid for a in later]}"
                    )
        return out

    def p4_idempotency_keys_stable(self) -> list[str]:
        """All attempts of a step used one key; no two steps shared one."""
        out = []
        owner: dict[str, tuple[str, int]] = {}
        for (wid, pos), attempts in sorted(self.by_step.items()):
            keys = {a.key for a in attempts}
            if len(keys) != 1:
                out.append(f"P4: attempts of {wid}@{pos} used different idempotency keys {sorted(keys)}")
            for key in keys:
                other = owner.setdefault(key, (wid, pos))
                if other != (wid, pos):
                    out.append(f"P4: idempotency key {key!r} used by {other} and {(wid, pos)}")
        return out

    # P7 ---------------------------------------------------------------------

    def p7_restarts_found_the_same_instances(self) -> list[str]:
        """Each worker that ran to its end was acknowledged every start, and no instance was added."""
        out = []
        if sorted(self.state.infos) != sorted(self.sc.ids):
            out.append(f"P7: instances {sorted(self.state.infos)} for the ids {sorted(self.sc.ids)}")
        for w in self.sc.workers:
            if w.returncode == 0:
                missing = set(self.sc.ids) - self.sc.ledger.starts(pid=w.pid)
                if missing:
                    out.append(
                        f"P7: worker {w.pid} finished without its start of {sorted(missing)} acknowledged"
                    )
        return out

    # C5 (for chain) -------------------------------------------------------

    def c5_outputs_match_model(self) -> list[str]:
        results = self.sc.results()
        out = [f"C5: {wid} has no result in the done marker" for wid in self.sc.ids if wid not in results]
        out.extend(
            f"C5: {wid} returned {value}, the model says {expected_output(wid, self.sc.steps)}"
            for wid, value in sorted(results.items())
            if value != expected_output(wid, self.sc.steps)
        )
        return out

    # C6 ---------------------------------------------------------------------

    def c6_replay_runs_no_step(self) -> list[str]:
        """Replay every completed instance on the current code, in a copy: no step may run.

        The copy's completed instances are made pending again (output cleared, recovery
        count reset: this is a fresh run, not a recovery), so a worker there re-drives
        each from the top: every step must come from the
        journal (no ledger attempt), the journal must not change, and the outputs
        must come out the same.
        """
        with self._replay_copy() as replay:
            worker = replay.spawn()
            try:
                code = worker.wait(60)
            finally:
                replay.stop()
            replayed = read_state(replay.url)
        if code != 0:
            return [f"C6: replay worker exited with {code}:\n{worker.output()}"]
        out = [
            f"C6: replay ran step {a.instance}@{a.step} (attempt {a.attempt})"
            for a in replay.ledger.attempts()
        ]
        out.extend(
            f"C6: replay changed the journal of {wid}"
            for wid, history in self.state.histories.items()
            if replayed.histories.get(wid) != history
        )
        original = self.sc.results() if self.sc.done.exists() else {}
        out.extend(
            f"C6: {wid} replayed to {value}, first run returned {original.get(wid)}"
            for wid, value in replay.results().items()
            if wid in original and original[wid] != value
        )
        return out

    @contextmanager
    def _replay_copy(self) -> Iterator[Scenario]:
        """A scenario on a copy of this one's database, completed instances made pending:
        a SQLite file next to it, or a new PostgreSQL schema (dropped after)."""
        sc = self.sc
        if sc.on_sqlite:
            replay = Scenario(sc.dir / "replay", sc.workflows, sc.steps, sc.sync_workflow)
            src, dst = sqlite3.connect(sc.db), sqlite3.connect(replay.db)
            try:
                src.backup(dst)
                with dst:
                    dst.execute(REPLAY_FROM_THE_TOP)
            finally:
                src.close()
                dst.close()
            yield replay
            return
        assert sc.engine_url is not None
        server, schema = postgres_schema(sc.engine_url)
        copy = f"{schema}_replay"
        url = f"{server}?options={quote(f'-csearch_path={copy}')}"
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{copy}"')
        try:
            asyncio.run(perdure.migrate(url))
            with psycopg.connect(server) as conn:
                # Replica mode: rows go in table by table, foreign keys unchecked meanwhile.
                conn.execute("SET LOCAL session_replication_role = replica")
                # The migration filled perdure_meta, and shards (free, as they should be here).
                tables = conn.execute(
                    "SELECT table_name FROM information_schema.tables WHERE table_schema = %s"
                    " AND table_type = 'BASE TABLE' AND table_name NOT IN ('perdure_meta', 'shards')",
                    (schema,),
                ).fetchall()
                for (table,) in tables:
                    conn.execute(
                        f'INSERT INTO "{copy}"."{table}" OVERRIDING SYSTEM VALUE SELECT * FROM "{schema}"."{table}"'
                    )
                conn.execute(f'SET LOCAL search_path = "{copy}"')
                conn.execute(
                    "SELECT setval(pg_get_serial_sequence('instances', 'seq'), max(seq)) FROM instances"
                )
                conn.execute(REPLAY_FROM_THE_TOP)
            yield Scenario(sc.dir / "replay", sc.workflows, sc.steps, sc.sync_workflow, engine_url=url)
        finally:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{copy}" CASCADE')

    # C7 ---------------------------------------------------------------------

    def c7_databases_clean(self) -> list[str]:
        engine = integrity_violations(self.sc.db) if self.sc.on_sqlite else []
        # PostgreSQL: foreign keys hold by construction; nothing may stay owned by a dead executor.
        if not self.sc.on_sqlite:
            engine = [
                f"C7: {wid} is still running"
                for wid, info in self.state.infos.items()
                if info.status == "running"
            ]
        return engine + integrity_violations(self.sc.ledger_path)

    # all --------------------------------------------------------------------

    def run(self, *, replay: bool = True, model: bool = True) -> dict[str, list[str]]:
        """Every check that applies to a finished ``chain`` scenario, by name."""
        checks: dict[str, Callable[[], list[str]]] = {
            "C1": self.c1_acknowledged_starts_ended_or_parked,
            "C2": self.c2_journals_contiguous_and_unchanged,
            "C3": self.c3_one_effect_per_completed_step,
            "C4": self.c4_attempts_bounded,
            "P4-no-rerun": self.p4_no_rerun_after_record,
            "P4-keys": self.p4_idempotency_keys_stable,
            "P7": self.p7_restarts_found_the_same_instances,
            "C7": self.c7_databases_clean,
        }
        if model:
            checks["C5"] = self.c5_outputs_match_model
        if replay:  # on a copy of the database
            checks["C6"] = self.c6_replay_runs_no_step
        return {name: check() for name, check in checks.items()}

    def summary(self) -> str:
        """What was seen, for the test's output."""
        runs = Counter(len(a) for a in self.by_step.values())
        per_pid = Counter(a.pid for a in self.attempts)
        workers = ", ".join(f"pid {w.pid}: exit {w.returncode}" for w in self.sc.workers)
        recorded = [len(s.state.steps()) for s in self.sc.snapshots]
        return (
            f"workers: {workers}\n"
            f"instances by status: {dict(self.state.statuses())}\n"
            f"journal step records: {len(self.state.steps())}; recorded at each crash: {recorded}\n"
            f"step executions: {len(self.attempts)} by pid {dict(per_pid)}; "
            f"steps by times run: {dict(sorted(runs.items()))}\n"
            f"effects rows: {len(self.effects)}; crashes: {self.crashes}"
        )


def assert_clean(checker: Checker, violations: dict[str, list[str]]) -> None:
    """Print what was seen; fail listing every violation, if any."""
    print(checker.summary())
    found = [v for name in sorted(violations) for v in violations[name]]
    for name, items in sorted(violations.items()):
        print(f"{name}: {'ok' if not items else f'{len(items)} violation(s)'}")
    assert not found, f"{len(found)} violation(s):\n" + "\n".join(found[:50])


__all__ = [
    "CRASHED",
    "Attempt",
    "Checker",
    "DbState",
    "Ledger",
    "MakeScenario",
    "Scenario",
    "Snapshot",
    "Worker",
    "assert_clean",
    "by_step",
    "clock",
    "eventually",
    "holds_for",
    "integrity_violations",
    "read_state",
    "retry_rows",
]
