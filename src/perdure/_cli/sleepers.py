"""W5 sleepers: many workflows each run one step, then sleep durably.

A sleeping workflow is not in the executor's memory (its wake-up is a row), so
what is measured is how the executor's RSS grows per sleeper: in all
(``kb_per_sleeper``, which includes the allocator's high-water mark left by
starting thousands at once) and at the margin (``marginal_kb_per_sleeper``: from
N/2 to N sleepers, the cost that grows with their number). With a short
sleep the run also waits for every sleeper to wake and finish, and reports the
RSS then: it must not grow with the number of sleepers either. Sleeps must be
longer than the engine's ``unload_after`` (5 s): shorter waits stay in memory
on purpose.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import time
from pathlib import Path

import perdure
from perdure._cli.workloads import BENCH_URL, REG, Figures, Params, engine_at, rss_mb

CHUNK = 5000


@perdure.step(registry=REG, name="bench.before-sleep")
async def before_sleep(i: int) -> int:
    return i


@perdure.workflow(registry=REG, name="bench.sleeper")
async def sleeper(seconds: float) -> int:
    await before_sleep(1)
    await perdure.sleep(seconds)
    return 1


async def _start(engine: perdure.Engine, n: int, seconds: float) -> None:
    for first in range(0, n, CHUNK):
        await asyncio.gather(*(engine.start(sleeper, seconds) for _ in range(min(CHUNK, n - first))))


def _count(db: Path, status: str) -> int:
    # A side reader of the database, outside the engine: the bench watches, it does not steer.
    url = os.environ.get(BENCH_URL)
    if url:
        import psycopg  # only with --db postgresql://...

        with psycopg.connect(url) as pg:
            found = pg.execute(
                "SELECT count(*) FROM instances WHERE name = 'bench.sleeper' AND status = %s", (status,)
            ).fetchone()
        return int(found[0]) if found else 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM instances WHERE name = 'bench.sleeper' AND status = ?", (status,)
        ).fetchone()
    return int(row[0])


async def _until(db: Path, status: str, n: int, timeout: float) -> float:
    t0 = time.perf_counter()
    while _count(db, status) < n:
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError(f"only {_count(db, status)} of {n} sleepers reached {status!r} in {timeout}s")
        await asyncio.sleep(0.2)
    return time.perf_counter() - t0


async def _sleepers(p: Params, db: Path) -> Figures:
    n, seconds = int(p["sleepers"]), float(p["sleep"])
    if seconds <= 5.0:
        raise RuntimeError(f"sleep must be longer than unload_after (5 s) to unload sleepers; got {seconds}")
    async with engine_at(db) as engine:
        await (await engine.start(sleeper, 0.0)).result()  # warm-up: code paths, caches
        gc.collect()
        rss0 = rss_mb()
        t0 = time.perf_counter()
        half = n // 2
        await _start(engine, half, seconds)
        await _until(db, "waiting", half, 600)
        gc.collect()
        rss_half = rss_mb()
        await _start(engine, n - half, seconds)
        started = time.perf_counter() - t0
        await _until(db, "waiting", n, 600)
        gc.collect()
        rss1 = rss_mb()
        figures: Figures = {
            "start_per_s": round(n / started, 1),
            "all_sleeping_s": round(time.perf_counter() - t0, 2),
            "rss_before_mb": round(rss0, 1),
            "rss_half_sleeping_mb": round(rss_half, 1),
            "rss_all_sleeping_mb": round(rss1, 1),
            "kb_per_sleeper": round((rss1 - rss0) * 1024 / n, 3),
            "marginal_kb_per_sleeper": round((rss1 - rss_half) * 1024 / (n - half), 3),
        }
        if seconds <= 120:
            figures["wake_to_all_done_s"] = round(await _until(db, "completed", n + 1, 600 + seconds), 2)
            gc.collect()
            rss2 = rss_mb()
            figures["rss_all_done_mb"] = round(rss2, 1)
            figures["kb_per_sleeper_after_wake"] = round((rss2 - rss0) * 1024 / n, 3)
    return figures


def run_sleepers(p: Params, db: Path) -> Figures:
    return asyncio.run(_sleepers(p, db))
