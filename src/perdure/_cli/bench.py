"""``perdure bench``: the workloads of BENCHMARKS.md, measured through the public API.

Each run happens in a fresh process (the hidden ``_once`` command), so peak RSS,
threads and warm caches never carry over from one run to the next. The parent
prints one JSON object per workload (and per flavour, for ``throughput``): the
median of the runs as ``figures``, every run under ``runs``, with the
parameters, what exactly was measured, versions and machine. Progress goes to
stderr, JSON to stdout. Durability is the engine's default: WAL, synchronous=FULL
on SQLite; synchronous_commit as the server has it (on by default) on PostgreSQL,
where each run gets a fresh schema of the ``--db`` database, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

import click

import perdure
from perdure._cli.actor_workload import run_actors
from perdure._cli.remote import roundtrip_http
from perdure._cli.sleepers import run_sleepers
from perdure._cli.workloads import (
    BENCH_URL,
    EXECUTORS,
    FLAVOURS,
    RUNS,
    Figures,
    Params,
    child_command,
    child_env,
    last_json,
)

F = TypeVar("F", bound=Callable[..., Any])
RUNS["sleepers"] = run_sleepers
RUNS["actors"] = run_actors

TITLES = {
    "floor": "floor",
    "steps-seq": "W1 steps-seq",
    "throughput": "W2 throughput",
    "roundtrip": "W3 roundtrip",
    "recovery": "W4 recovery",
    "replay": "W8 replay",
    "sleepers": "W5 sleepers",
    "actors": "W6 actors",
}
MEASURED_HTTP = (
    "per iteration, in a row, over one keep-alive HTTP connection: POST /v1/workflows?wait=30 starting "
    "perdure.ping (one step) and answering with its result, timed in this client from sending the request "
    "to reading the response; after 5 warm-up iterations; the server runs with its own database settings"
)
MEASURED = {
    "floor": (
        "wall time of N commits of one single-row INSERT each, divided by N, after 20 warm-up commits "
        "and N more not measured (a new SQLite file's first commits cost more, until its first "
        "checkpoint): "
        "SQLite: BEGIN IMMEDIATE; INSERT; COMMIT on a raw sqlite3 connection in WAL mode with "
        "synchronous=FULL; PostgreSQL: one INSERT in autocommit on a raw psycopg connection (one round "
        "trip, one WAL flush)"
    ),
    "steps-seq": (
        "wall time from engine.start() to result() of one workflow running N sequential no-op steps "
        "(the start and end commits included), alternated with chunks of the floor (as in 'floor': "
        "single-row durable commits on a raw connection to the same database or directory, one "
        "commit per iteration) in the same process and time window: `chunks` rounds, each one "
        "floor chunk of floor_commits commits and one such workflow, floor first in even rounds "
        "and last in odd ones (ABBA, so a steady drift of machine speed weighs on both sides "
        "alike), after one such round not measured (a new SQLite file's first commits grow "
        "its WAL until the first checkpoint); the floor runs in a worker thread while the "
        "engine, open throughout and warmed up by one 10-step workflow first, idles. "
        "us_per_step and floor_us_per_commit are the sums of wall time over all chunks "
        "divided by all steps or commits; ratio_to_floor is their "
        "ratio; chunk_ratios is each round's ratio of its own two chunks, ratio_chunk_min/median/max "
        "their spread; cpu_us_per_step and floor_cpu_us_per_commit are the process's CPU time "
        "(all threads, user and system) over the workflows or the floor chunks, divided likewise"
    ),
    "throughput": (
        "wall time from starting all workflows at once (asyncio.gather of engine.start) to the last "
        "result(); cpu_s is os.times() user+system of the whole process over that interval; peak_rss_mb "
        "is ru_maxrss of the run's own process (one fresh process per run, engine warmed by 1 workflow); "
        "with executors=N, a client process starts them all and N executor processes (engines open "
        "before the clock starts) run them: wall time to the last completion the executors recorded, "
        "cpu_s summed over the executors"
    ),
    "roundtrip": (
        "per iteration, in process and in a row: engine.start() of a 1-step workflow, then result(); "
        "after 5 warm-up iterations; p50_in_floor_commits = p50 / floor_ms_per_commit (the floor's mean "
        "commit time; its median is floor_p50_ms), the floor measured in the same process and time "
        "window, on the same database or directory, in 5 chunks alternating with 5 chunks of the "
        "iterations (ABBA), after floor_commits commits on each side not measured (the floor's, and a "
        "workflow of as many steps: a new file's first commits cost more)"
    ),
    "recovery": (
        "an executor process starts all workflows (ids wf0..), is SIGKILLed once half of all steps have "
        "written their effect line; a new executor process is spawned: restart_to_all_done_s is from "
        "that spawn to the moment it has read every result (interpreter start and engine open included); "
        "lost_workflows: not COMPLETED with the right result, read afterwards by a client engine; "
        "step_reexecutions: effect lines minus distinct effect lines (each step appends one); "
        "max_runs_of_one_step: the most times one step's effect was written"
    ),
    "replay": (
        "an executor process records N completed no-op steps, then dies (os._exit) inside the next "
        "step (the marker); a new process opens an engine, which claims and replays the instance: "
        "open_to_first_new_step_ms is from just before perdure.Engine(...) is constructed and opened to "
        "the marker step's body starting (journal load and replay of all N steps included); "
        "workflow_entry_to_first_new_step_ms is the replay inside the workflow code alone; "
        "spawn_to_first_new_step_ms adds interpreter start and imports (on PostgreSQL, psycopg's "
        "too, which perdure imports when an Engine first uses it)"
    ),
    "sleepers": (
        "N workflows started (gathered in chunks of 5,000) each run one no-op step then sleep; "
        "kb_per_sleeper is the executor's RSS once all N are waiting minus its RSS before starting "
        "them (after a warm-up workflow and gc), divided by N; marginal_kb_per_sleeper is the RSS "
        "growth from N/2 sleeping to N sleeping, divided by N/2; with a sleep of at most 120 s, "
        "kb_per_sleeper_after_wake is the same as kb_per_sleeper once all N have woken and completed"
    ),
    "actors": (
        "N actors each called once (Counter(k).add(1), gathered in chunks of 2,000): invocations_per_s "
        "is N over the wall time of that phase; then M calls one after the other on random keys, most "
        "of them evicted (a resident limit below N): random_p50_ms/p99_ms per call, from the call to "
        "its result; rss_after_mb is the process's RSS after both phases (engine in process, after "
        "gc); cpu_us_per_call and random_cpu_us_per_call are the process's CPU time (all threads) "
        "over each phase divided by its calls; bad_states counts sampled actors whose saved count "
        "differs from the calls made"
    ),
}
WORST = frozenset({"lost_workflows", "missing_effects", "bad_results", "bad_states"})
"""Figures that must be zero: reported as the worst run, not the median."""


@click.group()
def bench() -> None:
    """Run the benchmark workloads of BENCHMARKS.md.

    Each prints one JSON object on stdout (one per flavour for throughput):
    the median of --runs runs as "figures", every run under "runs".
    """


def _common(fn: F) -> F:
    fn = click.option(
        "--db",
        metavar="URL",
        default=None,
        help="sqlite:///path of a new database file (default: a fresh file in a temporary directory), "
        "or postgresql://user@host:port/database (each run gets a fresh schema there, dropped after)",
    )(fn)
    fn = click.option(
        "--runs", default=3, show_default=True, type=click.IntRange(1), help="runs; the median is reported"
    )(fn)
    return fn


def _flavour(default: str, *, both: bool = False) -> Callable[[F], F]:
    choices = [*FLAVOURS, "both"] if both else list(FLAVOURS)
    return click.option(
        "--flavour",
        type=click.Choice(choices),
        default=default,
        show_default=True,
        help="async: async def workflow and steps; sync: def workflow and steps",
    )


@bench.command()
@click.option("--commits", default=2000, show_default=True, type=click.IntRange(1))
@_common
def floor(commits: int, runs: int, db: str | None) -> None:
    """The storage floor: us per durable single-row commit on a raw connection (sqlite3 or psycopg)."""
    _report("floor", {"commits": commits}, runs, db)


@bench.command("steps-seq")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1), help="steps per workflow")
@click.option(
    "--floor-commits", default=1000, show_default=True, type=click.IntRange(1), help="commits per floor chunk"
)
@click.option(
    "--chunks",
    default=5,
    show_default=True,
    type=click.IntRange(1),
    help="rounds of one floor chunk and one workflow, alternated in one process",
)
@_flavour("async")
@_common
def steps_seq(steps: int, floor_commits: int, chunks: int, flavour: str, runs: int, db: str | None) -> None:
    """W1: one workflow runs N sequential no-op steps; us per step, ratio to the floor
    (measured in alternating chunks with the workflows)."""
    params = {"steps": steps, "flavour": flavour, "floor_commits": floor_commits, "chunks": chunks}
    _report("steps-seq", params, runs, db)


@bench.command()
@click.option("--workflows", default=2000, show_default=True, type=click.IntRange(1))
@click.option("--steps", default=10, show_default=True, type=click.IntRange(1))
@click.option(
    "--executors",
    default=0,
    show_default=True,
    type=click.IntRange(0, 64),
    help="0: start and run in one process; N: a client starts, N executor processes share the work "
    "(PostgreSQL)",
)
@_flavour("both", both=True)
@_common
def throughput(workflows: int, steps: int, executors: int, flavour: str, runs: int, db: str | None) -> None:
    """W2: many workflows of no-op steps started at once; workflows/s, steps/s, CPU, RSS."""
    if executors and (db is None or db.split(":", 1)[0] not in POSTGRES):
        raise click.UsageError("--executors needs --db postgresql://...: SQLite serves one process")
    for fl in FLAVOURS if flavour == "both" else (flavour,):
        params: Params = {"workflows": workflows, "steps": steps, "flavour": fl}
        if executors:
            params["executors"] = executors
        _report("throughput", params, runs, db)


@bench.command()
@click.option("--iterations", default=500, show_default=True, type=click.IntRange(1))
@click.option("--floor-commits", default=1000, show_default=True, type=click.IntRange(1))
@_flavour("async")
@_common
@click.option("--server", default=None, metavar="URL", help="time it over HTTP against this perdure server")
@click.option(
    "--token", envvar="PERDURE_TOKEN", default=None, help="the server's bearer token [env PERDURE_TOKEN]"
)
def roundtrip(
    iterations: int, floor_commits: int, flavour: str, runs: int, db: str | None, server: str | None,
    token: str | None,
) -> None:  # fmt: skip
    """W3: start a 1-step workflow and wait for its result, N times in a row; p50/p99.

    With --server, each iteration is one HTTP request to a running server
    (POST /v1/workflows?wait= of perdure.ping), timed here, in the client.
    """
    if server is None:
        params = {"iterations": iterations, "flavour": flavour, "floor_commits": floor_commits}
        _report("roundtrip", params, runs, db)
        return
    params = {"iterations": iterations, "transport": "http"}
    results: list[Figures] = []
    for k in range(runs):
        click.echo(f"perdure bench roundtrip over HTTP to {server}: run {k + 1}/{runs}", err=True)
        figures, database = roundtrip_http(server, token, iterations)
        results.append(figures)
    store = database.split(":", 1)[0]
    _emit("roundtrip", params, results, store=store, durability={"server_database": database})


@bench.command()
@click.option("--workflows", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--steps", default=20, show_default=True, type=click.IntRange(2))
@click.option("--sleep-ms", default=10.0, show_default=True, type=click.FloatRange(0))
@_flavour("async")
@_common
def recovery(workflows: int, steps: int, sleep_ms: float, flavour: str, runs: int, db: str | None) -> None:
    """W4: SIGKILL the executor when half the steps are done, restart; time, losses, re-runs."""
    params = {"workflows": workflows, "steps": steps, "sleep": sleep_ms / 1000, "flavour": flavour}
    _report("recovery", params, runs, db)


@bench.command()
@click.option("--steps", default=10_000, show_default=True, type=click.IntRange(1))
@_flavour("async")
@_common
def replay(steps: int, flavour: str, runs: int, db: str | None) -> None:
    """W8: recover a workflow whose journal holds N completed steps; ms to the first new step."""
    _report("replay", {"steps": steps, "flavour": flavour}, runs, db)


@bench.command()
@click.option("--sleepers", default=10_000, show_default=True, type=click.IntRange(1))
@click.option(
    "--sleep", "sleep_s", default=3600.0, show_default=True, type=click.FloatRange(5, min_open=True)
)
@_common
def sleepers(sleepers: int, sleep_s: float, runs: int, db: str | None) -> None:
    """W5: N workflows run a step, then sleep; executor RSS per sleeper (and after they wake,
    for sleeps up to 120 s)."""
    _report("sleepers", {"sleepers": sleepers, "sleep": sleep_s}, runs, db)


@bench.command()
@click.option("--actors", default=100_000, show_default=True, type=click.IntRange(1))
@click.option("--random-calls", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--resident", default=10_000, show_default=True, type=click.IntRange(1))
@_common
def actors(actors: int, random_calls: int, resident: int, runs: int, db: str | None) -> None:
    """W6: N actors called once each, then calls on random (mostly evicted) keys; calls/s,
    p50/p99 of the random calls, RSS."""
    _report("actors", {"actors": actors, "random_calls": random_calls, "resident": resident}, runs, db)


@bench.command("_once", hidden=True)
@click.argument("kind", type=click.Choice(sorted(RUNS)))
@click.argument("params")
@click.argument("db", type=click.Path(path_type=Path))
def once(kind: str, params: str, db: Path) -> None:
    """One measured run in this process; prints its figures."""
    try:
        figures = RUNS[kind](json.loads(params), db)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(figures))


@bench.command("_executor", hidden=True)
@click.argument("role", type=click.Choice(sorted(EXECUTORS)))
@click.argument("params")
def executor(role: str, params: str) -> None:
    """An executor process that recovery and replay kill and restart."""
    figures = asyncio.run(EXECUTORS[role](json.loads(params)))
    click.echo(json.dumps(figures))


# --- running and reporting ---------------------------------------------------------


def _report(kind: str, params: Params, runs: int, db: str | None) -> None:
    results: list[Figures] = []
    postgres = db if db is not None and db.split(":", 1)[0] in POSTGRES else None
    for k in range(runs):
        shown = " ".join(f"{key}={value}" for key, value in params.items())
        click.echo(f"perdure bench {kind} {shown}: run {k + 1}/{runs}", err=True)
        with _schema(postgres) if postgres else _database(db, k) as path:
            results.append(_run_once(kind, params, path))
    durability = _server(postgres) if postgres else {"journal_mode": "wal", "synchronous": "FULL"}
    _emit(kind, params, results, store="postgres" if postgres else "sqlite", durability=durability)


def _emit(kind: str, params: Params, results: list[Figures], *, store: str, durability: Figures) -> None:
    doc = {
        "system": "perdure",
        "workload": TITLES[kind],
        "store": store,
        "durability": durability,
        "params": params,
        "runs_n": len(results),
        "figures": summarize(results),
        "runs": results,
        "measured": MEASURED_HTTP if params.get("transport") == "http" else MEASURED[kind],
        **environment(),
    }
    click.echo(json.dumps(doc))


def _run_once(kind: str, params: Params, db: Path) -> Figures:
    proc = subprocess.run(
        child_command("_once", kind, json.dumps(params), str(db)),
        env=child_env(),
        stdout=subprocess.PIPE,
        check=False,
    )
    if proc.returncode != 0:
        raise click.ClickException(
            f"a {kind} run failed (exit status {proc.returncode}); see its error above"
        )
    try:
        return last_json(proc.stdout, f"a {kind} run")
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc


POSTGRES = ("postgresql", "postgres")


def _admin(url: str) -> Any:
    """A psycopg connection to the --db database, for making and dropping the runs' schemas."""
    import psycopg  # only with --db postgresql://...

    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise click.UsageError(f"cannot connect to the --db PostgreSQL database: {first}") from None


@contextmanager
def _schema(url: str) -> Iterator[Path]:
    """A fresh schema for one run (its processes find it in PERDURE_BENCH_URL), and a
    temporary directory for the run's side files; both removed after."""
    name = f"perdure_bench_{uuid.uuid4().hex[:12]}"
    with _admin(url) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    tmp = Path(tempfile.mkdtemp(prefix="perdure-bench-"))
    sep = "&" if "?" in url else "?"
    os.environ[BENCH_URL] = f"{url}{sep}options=-csearch_path%3D{name}"
    try:
        yield tmp / "bench.db"
    finally:
        os.environ.pop(BENCH_URL, None)
        shutil.rmtree(tmp, ignore_errors=True)
        with _admin(url) as conn:
            conn.execute(f'DROP SCHEMA "{name}" CASCADE')


def _server(url: str) -> Figures:
    """What the PostgreSQL server's durability settings and version are."""
    with _admin(url) as conn:
        found = {
            name: conn.execute(f"SHOW {name}").fetchone()[0]
            for name in ("synchronous_commit", "fsync", "wal_sync_method", "server_version")
        }
    return found


@contextmanager
def _database(db: str | None, k: int) -> Iterator[Path]:
    """The database file of run ``k``: new each time; a temporary one is removed after."""
    if db is None:
        tmp = Path(tempfile.mkdtemp(prefix="perdure-bench-"))
        try:
            yield tmp / "bench.db"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return
    path = _path_of(db)
    if k:
        path = path.with_name(f"{path.stem}-{k + 1}{path.suffix}")
    if path.exists():
        raise click.UsageError(
            f"{path} exists; the benchmark needs a new database: name a file that does not exist"
        )
    if not path.parent.is_dir():
        raise click.UsageError(f"the directory of {path} does not exist")
    yield path


def _path_of(url: str) -> Path:
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise click.BadParameter(
            f"{url!r} is neither a SQLite nor a PostgreSQL URL; use sqlite:///relative.db, "
            "sqlite:////absolute.db or postgresql://user@host:5432/database",
            param_hint="--db",
        )
    if "?" in url:
        raise click.BadParameter(
            f"{url!r} has parameters; the benchmark always runs with the durable defaults", param_hint="--db"
        )
    return Path(url[len(prefix) :])


def summarize(runs: list[Figures]) -> Figures:
    """The median of each numeric figure over the runs (the worst for must-be-zero ones); a
    figure of another kind (a list) only if every run has the same (each run has its own)."""
    out: Figures = {}
    for key, first in runs[0].items():
        values = [r[key] for r in runs]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            if all(v == first for v in values):
                out[key] = first
        elif key in WORST:
            out[key] = max(values)
        else:
            median = statistics.median(values)
            out[key] = round(median, 3) if isinstance(median, float) else median
    return out


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def environment() -> Figures:
    """Versions and machine, so figures are only compared within one machine."""
    return {
        "versions": {
            "perdure": perdure.__version__,
            "sqlite": sqlite3.sqlite_version,
            "msgspec": _version("msgspec"),
        },
        "machine": {
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "arch": platform.machine(),
        },
    }
