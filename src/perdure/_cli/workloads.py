"""The workloads of BENCHMARKS.md: their workflows, and one measured run of each.

Each ``run_*`` function measures one run in the current process (a fresh one:
``bench.py`` starts a process per run) and returns its figures. Recovery and
replay start executor processes of their own (``executor_*``), so they can be
killed and restarted for real. Workflows live in a private ``Registry`` so they
never collide with the user's definitions. Only the public API is used.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import resource
import signal
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NamedTuple, cast

import perdure

REG = perdure.Registry()
FLAVOURS = ("async", "sync")
WARMUP_COMMITS = 20
RECOVERY_ID = "wf{}"
REPLAY_ID = "replay-1"
CRASH_EXIT = 137
Params = dict[str, Any]
Figures = dict[str, Any]


def mono() -> float:
    """System-wide monotonic seconds: comparable between processes on one machine."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def cpu_s() -> float:
    """User + system CPU seconds of this process, all threads (os.times at µs resolution)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS; the bench targets Linux).
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def aux(db: Path, suffix: str) -> Path:
    """A side file next to the benchmark database (floor database, effect log, marks)."""
    return db.with_name(f"{db.name}.{suffix}")


def child_command(*args: str) -> list[str]:
    """Run ``perdure bench ARGS`` in a new interpreter (this one's)."""
    return [sys.executable, "-m", "perdure._cli.main", "bench", *args]


def child_env() -> dict[str, str]:
    """This environment without fault injection: benchmarks measure the defaults."""
    env = dict(os.environ)
    for name in ("PERDURE_CRASHPOINT", "PERDURE_STORE_FAULTS", "PERDURE_SEED"):
        env.pop(name, None)
    return env


BENCH_URL = "PERDURE_BENCH_URL"
"""Set by ``perdure bench --db postgresql://...`` for its run processes: the run's fresh schema.
Unset, the run's database is the SQLite file ``db``."""


def engine_at(db: Path, *, executor: bool = True, max_resident_actors: int = 10_000) -> perdure.Engine:
    """An engine with every default (durable: WAL, synchronous=FULL; PostgreSQL's
    synchronous_commit=on) but the registry (and the workload's resident actors)."""
    url = os.environ.get(BENCH_URL) or f"sqlite:///{db.resolve()}"
    return perdure.Engine(url, registry=REG, executor=executor, max_resident_actors=max_resident_actors)


# --- what the workflows report back to the process they run in -----------------


class Probe:
    """Side channels of the bench workflows: effect log, marker file, timestamps."""

    side_fd: int | None = None
    mark_path: Path | None = None
    crash_at_mark = False
    entered_at = 0.0
    marked_at = 0.0


PROBE = Probe()


def _effect(wf: str, i: int) -> None:
    assert PROBE.side_fd is not None, "the effect log is opened before the engine"
    # One O_APPEND write per line: lines never interleave, even across processes.
    os.write(PROBE.side_fd, f"{wf}:{i}\n".encode())


def _mark() -> None:
    PROBE.marked_at = mono()
    if PROBE.mark_path is not None:
        with PROBE.mark_path.open("a") as f:
            f.write(f"{PROBE.marked_at!r}\n")
    if PROBE.crash_at_mark:
        os._exit(CRASH_EXIT)


def _value(x: object) -> int:
    # In a def workflow a step call returns its value; Step.__call__ is typed as an awaitable.
    return cast(int, x)


# --- workflows -----------------------------------------------------------------


@perdure.step(registry=REG, name="bench.noop")
async def noop(i: int) -> int:
    return i


@perdure.step(registry=REG, name="bench.noop-sync")
def noop_sync(i: int) -> int:
    return i


@perdure.workflow(registry=REG, name="bench.steps")
async def steps_async(n: int) -> int:
    total = 0
    for i in range(n):
        total += await noop(i)
    return total


@perdure.workflow(registry=REG, name="bench.steps-sync")
def steps_sync(n: int) -> int:
    total = 0
    for i in range(n):
        total += _value(noop_sync(i))
    return total


@perdure.step(registry=REG, name="bench.work")
async def work(wf: str, i: int, sleep: float) -> int:
    await asyncio.sleep(sleep)
    _effect(wf, i)
    return i


@perdure.step(registry=REG, name="bench.work-sync")
def work_sync(wf: str, i: int, sleep: float) -> int:
    time.sleep(sleep)
    _effect(wf, i)
    return i


@perdure.workflow(registry=REG, name="bench.recovery")
async def recovery_async(wf: str, steps: int, sleep: float) -> int:
    total = 0
    for i in range(steps):
        total += await work(wf, i, sleep)
    return total


@perdure.workflow(registry=REG, name="bench.recovery-sync")
def recovery_sync(wf: str, steps: int, sleep: float) -> int:
    total = 0
    for i in range(steps):
        total += _value(work_sync(wf, i, sleep))
    return total


@perdure.step(registry=REG, name="bench.marker")
async def marker() -> None:
    _mark()


@perdure.step(registry=REG, name="bench.marker-sync")
def marker_sync() -> None:
    _mark()


@perdure.workflow(registry=REG, name="bench.replay")
async def replay_async(n: int) -> int:
    PROBE.entered_at = mono()
    total = 0
    for i in range(n):
        total += await noop(i)
    await marker()
    return total


@perdure.workflow(registry=REG, name="bench.replay-sync")
def replay_sync(n: int) -> int:
    PROBE.entered_at = mono()
    total = 0
    for i in range(n):
        total += _value(noop_sync(i))
    marker_sync()
    return total


Flow = perdure.Workflow[..., Any]
STEPS: dict[str, Flow] = {"async": steps_async, "sync": steps_sync}
RECOVERY: dict[str, Flow] = {"async": recovery_async, "sync": recovery_sync}
REPLAY: dict[str, Flow] = {"async": replay_async, "sync": replay_sync}


# --- the storage floor -----------------------------------------------------------


Committer = tuple[Callable[[], None], Callable[[], None]]
PAYLOAD = b"x" * 64


def _sqlite_committer(path: Path) -> Committer:
    """Single-row INSERT commits on a raw sqlite3 connection, WAL and synchronous=FULL."""
    # Used from one thread at a time, but not always the one that opened it (steps-seq
    # runs its floor chunks in a worker thread while the engine's loop waits).
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode != "wal":
        conn.close()
        raise RuntimeError(f"{path}: could not switch to WAL (got {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS floor (id INTEGER PRIMARY KEY, v BLOB NOT NULL)")

    def commit() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO floor (v) VALUES (?)", (PAYLOAD,))
        conn.execute("COMMIT")

    return commit, conn.close


def _postgres_committer(url: str) -> Committer:
    """Single-row INSERT commits on a raw psycopg connection in autocommit: one statement,
    one round trip, one WAL flush (synchronous_commit as the server has it, on by default)."""
    import psycopg  # only with --db postgresql://...

    conn = psycopg.connect(url, autocommit=True)
    conn.execute("CREATE TABLE IF NOT EXISTS floor (id BIGSERIAL PRIMARY KEY, v BYTEA NOT NULL)")

    def commit() -> None:
        conn.execute("INSERT INTO floor (v) VALUES (%s)", (PAYLOAD,))

    def close() -> None:
        conn.execute("DROP TABLE floor")  # the engine then finds the run's schema empty, as it must
        conn.close()

    return commit, close


def open_committer(path: Path) -> Committer:
    """A raw durable single-row committer on the run's database (PostgreSQL with --db, else
    the SQLite file ``path``), warmed up by ``WARMUP_COMMITS`` commits."""
    url = os.environ.get(BENCH_URL)
    commit, close = _postgres_committer(url) if url else _sqlite_committer(path)
    try:
        for _ in range(WARMUP_COMMITS):
            commit()
    except BaseException:
        close()
        raise
    return commit, close


def floor_chunk(commit: Callable[[], None], commits: int) -> tuple[float, list[float]]:
    """``commits`` commits in a row: the wall seconds of all, and each one's latency."""
    lat: list[float] = []
    t0 = time.perf_counter()
    for _ in range(commits):
        t = time.perf_counter()
        commit()
        lat.append(time.perf_counter() - t)
    return time.perf_counter() - t0, lat


def measure_floor(path: Path, commits: int) -> Figures:
    """The storage floor: durable single-row commits on a raw connection to the run's database,
    measured after as many not measured (a new SQLite file's first commits, its WAL growing
    until the first checkpoint, cost more: see ``_steps_seq``)."""
    commit, close = open_committer(path)
    try:
        floor_chunk(commit, commits)
        wall, lat = floor_chunk(commit, commits)
    finally:
        close()
    return {
        "commits": commits,
        "us_per_commit": round(wall / commits * 1e6, 1),
        "p50_us": round(quantile(lat, 0.5) * 1e6, 1),
        "p99_us": round(quantile(lat, 0.99) * 1e6, 1),
    }


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def run_floor(p: Params, db: Path) -> Figures:
    return measure_floor(db, int(p["commits"]))


# --- W1, W2, W3: one process -----------------------------------------------------


class Chunk(NamedTuple):
    """One measured chunk of W1: its wall and CPU seconds, and how many steps or commits."""

    wall: float
    cpu: float
    n: int


async def _steps_chunk(engine: perdure.Engine, wf: Flow, n: int) -> Chunk:
    """One W1 workflow of ``n`` steps, timed from start() to result()."""
    c0, t0 = cpu_s(), time.perf_counter()
    total = await (await engine.start(wf, n)).result()
    wall, cpu = time.perf_counter() - t0, cpu_s() - c0
    if total != sum(range(n)):
        raise RuntimeError(f"steps-seq returned {total}, expected {sum(range(n))}")
    return Chunk(wall, cpu, n)


async def _floor_chunk(commit: Callable[[], None], n: int) -> Chunk:
    """``n`` floor commits in a worker thread (the engine's loop stays free and idle)."""
    c0 = cpu_s()
    wall, _ = await asyncio.to_thread(floor_chunk, commit, n)
    return Chunk(wall, cpu_s() - c0, n)


async def _abba(
    rounds: int, floor: Callable[[int], Awaitable[None]], work: Callable[[int], Awaitable[None]]
) -> None:
    """Round ``r`` runs ``floor(r)`` then ``work(r)`` when ``r`` is even, the other way round
    when odd (ABBA), in this process and one time window: a machine whose speed drifts moves
    both sides alike."""
    for r in range(rounds):
        first, second = (floor, work) if r % 2 == 0 else (work, floor)
        await first(r)
        await second(r)


def _split(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` nearly equal shares."""
    return [total // parts + (r < total % parts) for r in range(parts)]


async def _steps_seq(p: Params, db: Path) -> Figures:
    """W1 and the floor in alternating chunks (see ``_abba``)."""
    wf, n, commits, rounds = STEPS[p["flavour"]], int(p["steps"]), int(p["floor_commits"]), int(p["chunks"])
    steps: list[Chunk] = []
    floor: list[Chunk] = []
    async with engine_at(db) as engine:
        await (await engine.start(wf, 10)).result()  # warm-up, not measured
        # Opened after the engine: on PostgreSQL its table joins the schema the engine made.
        commit, close = await asyncio.to_thread(open_committer, aux(db, "floor"))
        try:
            # A round not measured: a new SQLite file's first commits grow its WAL (each one
            # also changes the file's size) until the first checkpoint; the floor's file and
            # the engine's would both be measured in that costlier phase, for different shares.
            await _floor_chunk(commit, commits)
            await _steps_chunk(engine, wf, n)

            async def floor_round(_: int) -> None:
                floor.append(await _floor_chunk(commit, commits))

            async def steps_round(_: int) -> None:
                steps.append(await _steps_chunk(engine, wf, n))

            await _abba(rounds, floor_round, steps_round)
        finally:
            await asyncio.to_thread(close)
    return _w1_figures(steps, floor)


def _w1_figures(steps: list[Chunk], floor: list[Chunk]) -> Figures:
    n, commits = sum(c.n for c in steps), sum(c.n for c in floor)
    step_s, floor_s = sum(c.wall for c in steps) / n, sum(c.wall for c in floor) / commits
    # Each round's steps against its own floor chunk, measured next to each other.
    ratios = [(s.wall / s.n) / (f.wall / f.n) for s, f in zip(steps, floor, strict=True)]
    return {
        "us_per_step": round(step_s * 1e6, 1),
        "wall_s": round(step_s * n, 3),
        "cpu_us_per_step": round(sum(c.cpu for c in steps) / n * 1e6, 1),
        "floor_us_per_commit": round(floor_s * 1e6, 1),
        "floor_cpu_us_per_commit": round(sum(c.cpu for c in floor) / commits * 1e6, 1),
        "ratio_to_floor": round(step_s / floor_s, 2),
        "chunks": len(steps),
        "ratio_chunk_min": round(min(ratios), 2),
        "ratio_chunk_median": round(statistics.median(ratios), 2),
        "ratio_chunk_max": round(max(ratios), 2),
        "chunk_ratios": [round(x, 2) for x in ratios],
    }


def run_steps_seq(p: Params, db: Path) -> Figures:
    return asyncio.run(_steps_seq(p, db))


async def _throughput(p: Params, db: Path) -> Figures:
    wf, n, steps = STEPS[p["flavour"]], int(p["workflows"]), int(p["steps"])
    async with engine_at(db) as engine:
        await (await engine.start(wf, 1)).result()  # warm-up, not measured
        rss0 = rss_mb()
        c0, t0 = cpu_s(), time.perf_counter()
        handles = await asyncio.gather(*(engine.start(wf, steps) for _ in range(n)))
        started = time.perf_counter() - t0
        results = await asyncio.gather(*(h.result() for h in handles))
        wall, cpu = time.perf_counter() - t0, cpu_s() - c0
        peak, rss1 = peak_rss_mb(), rss_mb()
    return {
        **_rates(n, steps, wall, started, cpu),
        "peak_rss_mb": round(peak, 1),
        "rss_before_mb": round(rss0, 1),
        "rss_after_mb": round(rss1, 1),
        "bad_results": sum(1 for r in results if r != sum(range(steps))),
    }


def _rates(n: int, steps: int, wall: float, started: float, cpu: float) -> Figures:
    """W2's figures for ``n`` workflows of ``steps`` steps done in ``wall`` seconds."""
    return {
        "wf_per_s": round(n / wall, 1),
        "steps_per_s": round(n * steps / wall, 1),
        "wall_s": round(wall, 3),
        "start_all_s": round(started, 3),
        "cpu_s": round(cpu, 2),
        "cpu_us_per_step": round(cpu / (n * steps) * 1e6, 1),
    }


def run_throughput(p: Params, db: Path) -> Figures:
    if int(p.get("executors", 0)):
        return run_throughput_shared(p, db)
    return asyncio.run(_throughput(p, db))


def realtime() -> float:
    """Wall-clock seconds, comparable with the times executors record in the database."""
    return time.clock_gettime(time.CLOCK_REALTIME)


def run_throughput_shared(p: Params, db: Path) -> Figures:
    """W2 on ``executors`` processes sharing the database: this process is a client that
    starts every workflow (pending; the executors claim them) and waits for the results.
    An executor runs until its stdin is closed."""
    n, steps, k = int(p["workflows"]), int(p["steps"]), int(p["executors"])
    ready = [aux(db, f"ready{i}") for i in range(k)]
    procs = [
        subprocess.Popen(
            child_command("_executor", "throughput", json.dumps({**p, "ready": str(r)})),
            env=child_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for r in ready
    ]
    try:
        for r, proc in zip(ready, procs, strict=True):
            _wait_until(r.exists, proc, 120, "the executors opened their engines")
        t0, started, ended, bad = asyncio.run(_start_and_wait(p, db))
        inner = [last_json(proc.communicate(timeout=120)[0], "an executor") for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wall = ended - t0
    cpu = sum(x["cpu_s"] for x in inner)
    return {
        "executors": k,
        **_rates(n, steps, wall, started, cpu),
        "activations_per_executor": [x["activations"] for x in inner],
        "peak_rss_mb": round(max(x["peak_rss_mb"] for x in inner), 1),
        "bad_results": bad,
    }


async def _start_and_wait(p: Params, db: Path) -> tuple[float, float, float, int]:
    """(start time, seconds to start all, the last completion the executors recorded, bad results)."""
    wf, n, steps = STEPS[p["flavour"]], int(p["workflows"]), int(p["steps"])
    async with engine_at(db, executor=False) as client:
        await (await client.start(wf, 1)).result()  # warm-up, not measured
        t0 = realtime()
        handles = await asyncio.gather(*(client.start(wf, steps) for _ in range(n)))
        started = realtime() - t0
        results = await asyncio.gather(*(h.result() for h in handles))
        # As the executors recorded it: the client's polling for results adds nothing.
        infos = await asyncio.gather(*(h.info() for h in handles))
    ended = max(i.updated_at.timestamp() for i in infos)
    return t0, started, ended, sum(1 for r in results if r != sum(range(steps)))


async def executor_throughput(p: Params) -> Figures:
    """One of W2's shared executors: runs what it claims until its stdin closes."""
    async with engine_at(Path(p["ready"])) as engine:
        c0 = cpu_s()
        await asyncio.to_thread(Path(p["ready"]).touch)
        await asyncio.to_thread(sys.stdin.read)
        cpu = cpu_s() - c0
        stats = engine.executor_stats
    return {"cpu_s": cpu, "activations": stats.get("activations", 0), "peak_rss_mb": peak_rss_mb()}


ROUNDTRIP_ROUNDS = 5


async def _roundtrip(p: Params, db: Path) -> tuple[list[float], list[float], float]:
    """W3's round trips and the floor's commits in alternating chunks (ABBA, as for W1, after
    a round not measured): the latencies of both, and the floor's mean seconds per commit."""
    wf, n, commits = STEPS[p["flavour"]], int(p["iterations"]), int(p["floor_commits"])
    lat: list[float] = []
    floor_lat: list[float] = []
    floor_wall = 0.0

    async def trips(k: int, out: list[float]) -> None:
        for _ in range(k):
            t = time.perf_counter()
            await (await engine.start(wf, 1)).result()
            out.append(time.perf_counter() - t)

    async with engine_at(db) as engine:
        commit, close = await asyncio.to_thread(open_committer, aux(db, "floor"))
        try:
            # Not measured: as many commits on each side first, as a new file's first commits
            # cost more (see _steps_seq); then 5 warm-up iterations.
            await asyncio.to_thread(floor_chunk, commit, commits)
            await (await engine.start(wf, commits)).result()
            await trips(5, [])
            sizes, floor_sizes = _split(n, ROUNDTRIP_ROUNDS), _split(commits, ROUNDTRIP_ROUNDS)

            async def floor_round(r: int) -> None:
                nonlocal floor_wall
                wall, chunk = await asyncio.to_thread(floor_chunk, commit, floor_sizes[r])
                floor_wall += wall
                floor_lat.extend(chunk)

            async def trips_round(r: int) -> None:
                await trips(sizes[r], lat)

            await _abba(ROUNDTRIP_ROUNDS, floor_round, trips_round)
        finally:
            await asyncio.to_thread(close)
    return lat, floor_lat, floor_wall / max(1, len(floor_lat))


def run_roundtrip(p: Params, db: Path) -> Figures:
    lat, floor_lat, floor_s = asyncio.run(_roundtrip(p, db))
    p50 = quantile(lat, 0.5) * 1e3
    floor_ms = floor_s * 1e3
    return {
        "p50_ms": round(p50, 3),
        "p99_ms": round(quantile(lat, 0.99) * 1e3, 3),
        "mean_ms": round(statistics.fmean(lat) * 1e3, 3),
        "floor_ms_per_commit": round(floor_ms, 3),
        "floor_p50_ms": round(quantile(floor_lat, 0.5) * 1e3, 3),
        "p50_in_floor_commits": round(p50 / floor_ms, 2),
    }


# --- W4 recovery: SIGKILL the executor midway, restart it ------------------------


class LineCounter:
    """Counts the lines of a growing file without reading it all again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.count = 0
        self._offset = 0

    def poll(self) -> int:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return 0
        self._offset += len(data)
        self.count += data.count(b"\n")
        return self.count


def _wait_until(cond: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if proc.poll() is not None:
            raise RuntimeError(f"the executor exited ({proc.returncode}) before {what}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.002)  # polling a condition under a deadline


def last_json(out: bytes, what: str) -> Figures:
    lines = [line for line in out.decode().splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"{what} printed no JSON; its stderr is above")
    found: Figures = json.loads(lines[-1])
    return found


def run_recovery(p: Params, db: Path) -> Figures:
    n, steps = int(p["workflows"]), int(p["steps"])
    side, started = aux(db, "side"), aux(db, "started")
    child = {**p, "db": str(db), "side": str(side), "started": str(started)}
    counter = LineCounter(side)
    first = subprocess.Popen(child_command("_executor", "recovery", json.dumps(child)), env=child_env())
    t0 = time.perf_counter()
    half = n * steps // 2
    _wait_until(lambda: started.exists() and counter.poll() >= half, first, 600, f"{half} steps ran")
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed_after = time.perf_counter() - t0
    at_kill = counter.poll()
    spawned_at = mono()
    second = subprocess.run(
        child_command("_executor", "recovery", json.dumps({**child, "recover": True})),
        env=child_env(),
        stdout=subprocess.PIPE,
        timeout=3600,
        check=False,
    )
    exited_s = mono() - spawned_at
    if second.returncode != 0:
        raise RuntimeError(f"the restarted executor failed with exit status {second.returncode}")
    inner = last_json(second.stdout, "the restarted executor")
    lines = side.read_text().split()
    want = {f"{RECOVERY_ID.format(k)}:{i}" for k in range(n) for i in range(steps)}
    lost = asyncio.run(_lost(db, n, sum(range(steps))))
    return {
        "restart_to_all_done_s": round(inner["done_at"] - spawned_at, 3),
        "open_to_all_done_s": round(inner["done_at"] - inner["open_at"], 3),
        "restart_to_exit_s": round(exited_s, 3),
        "killed_after_s": round(killed_after, 3),
        "steps_done_at_kill": at_kill,
        "lost_workflows": lost,
        "missing_effects": len(want - set(lines)),
        "step_reexecutions": len(lines) - len(set(lines)),
        "max_runs_of_one_step": max(Counter(lines).values(), default=0),
        "recovered_instances": inner["recoveries"],
    }


async def _lost(db: Path, n: int, expected: int) -> int:
    """Workflows not completed with the right result, read by a client with no executor."""
    lost = 0
    async with engine_at(db, executor=False) as client:
        for k in range(n):
            wid = RECOVERY_ID.format(k)
            try:
                info = await client.info(wid)
            except perdure.NotFound:
                lost += 1
                continue
            if info.status is not perdure.Status.COMPLETED or await client.result(wid) != expected:
                lost += 1
    return lost


async def executor_recovery(p: Params) -> Figures:
    """The executor W4 kills (``recover`` false) and the one it restarts (true)."""
    PROBE.side_fd = os.open(p["side"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    wf, n, steps, sleep = RECOVERY[p["flavour"]], int(p["workflows"]), int(p["steps"]), float(p["sleep"])
    ids = [RECOVERY_ID.format(k) for k in range(n)]
    open_at = mono()
    async with engine_at(Path(p["db"])) as engine:
        if p.get("recover"):
            handles = [await engine.get(wid) for wid in ids]
        else:
            handles = await asyncio.gather(*(engine.start(wf, wid, steps, sleep, id=wid) for wid in ids))
            await asyncio.to_thread(Path(p["started"]).touch)
        results = await asyncio.gather(*(h.result() for h in handles))
        done_at = mono()
        stats = engine.executor_stats
    return {
        "open_at": open_at,
        "done_at": done_at,
        "bad_results": sum(1 for r in results if r != sum(range(steps))),
        "recoveries": stats.get("recoveries", 0),
    }


# --- W8 replay: recover an instance whose journal holds N steps ------------------


def run_replay(p: Params, db: Path) -> Figures:
    mark = aux(db, "mark")
    child = {**p, "db": str(db), "mark": str(mark)}
    t0 = time.perf_counter()
    first = subprocess.run(
        child_command("_executor", "replay", json.dumps({**child, "phase": "record"})),
        env=child_env(),
        stdout=subprocess.DEVNULL,
        timeout=3600,
        check=False,
    )
    record_s = time.perf_counter() - t0
    if first.returncode != CRASH_EXIT or len(mark.read_text().split()) != 1:
        raise RuntimeError(f"recording the journal did not end at the marker (exit {first.returncode})")
    status, entries = asyncio.run(_journal_state(db))
    spawned_at = mono()
    second = subprocess.run(
        child_command("_executor", "replay", json.dumps({**child, "phase": "recover"})),
        env=child_env(),
        stdout=subprocess.PIPE,
        timeout=3600,
        check=False,
    )
    if second.returncode != 0:
        raise RuntimeError(f"the recovering executor failed with exit status {second.returncode}")
    inner = last_json(second.stdout, "the recovering executor")
    ms = 1e3
    return {
        "open_to_first_new_step_ms": round((inner["marked_at"] - inner["open_at"]) * ms, 2),
        "open_call_ms": round((inner["opened_at"] - inner["open_at"]) * ms, 2),
        "open_to_workflow_entry_ms": round((inner["entered_at"] - inner["open_at"]) * ms, 2),
        "workflow_entry_to_first_new_step_ms": round((inner["marked_at"] - inner["entered_at"]) * ms, 2),
        "spawn_to_first_new_step_ms": round((inner["marked_at"] - spawned_at) * ms, 2),
        "journal_entries_before": entries,
        "status_before": status,
        "recoveries": inner["recoveries"],
        "record_s": round(record_s, 2),
    }


async def _journal_state(db: Path) -> tuple[str, int]:
    async with engine_at(db, executor=False) as client:
        info = await client.info(REPLAY_ID)
        return str(info.status), len(await client.history(REPLAY_ID))


async def executor_replay(p: Params) -> Figures:
    """``record``: run N steps, then die in the marker step; ``recover``: replay them."""
    PROBE.mark_path = Path(p["mark"])
    PROBE.crash_at_mark = p["phase"] == "record"
    wf, n = REPLAY[p["flavour"]], int(p["steps"])
    if os.environ.get(BENCH_URL):  # the driver loads when first used: count it with the imports
        importlib.import_module("psycopg_pool")
    open_at = mono()
    engine = engine_at(Path(p["db"]))
    await engine.open()
    opened_at = mono()
    try:
        if PROBE.crash_at_mark:
            await (await engine.start(wf, n, id=REPLAY_ID)).result()
            raise RuntimeError("the marker step should have ended this process")
        result = await (await engine.get(REPLAY_ID)).result()
        stats = engine.executor_stats
    finally:
        await engine.close()
    if result != sum(range(n)):
        raise RuntimeError(f"the replayed workflow returned {result}, expected {sum(range(n))}")
    return {
        "open_at": open_at,
        "opened_at": opened_at,
        "entered_at": PROBE.entered_at,
        "marked_at": PROBE.marked_at,
        "recoveries": stats.get("recoveries", 0),
    }


RUNS: dict[str, Callable[[Params, Path], Figures]] = {
    "floor": run_floor,
    "steps-seq": run_steps_seq,
    "throughput": run_throughput,
    "roundtrip": run_roundtrip,
    "recovery": run_recovery,
    "replay": run_replay,
}
EXECUTORS = {"recovery": executor_recovery, "replay": executor_replay, "throughput": executor_throughput}
