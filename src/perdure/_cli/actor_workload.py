"""W6 actors: many keyed durable objects each called once, then calls on random keys.

Phase one calls ``Counter(k).add(1)`` once on each of N actors (gathered in
chunks), so every actor is created, runs once and saves its state; with more
actors than the resident limit, most of them are evicted by the end. Phase two
makes calls one after the other on random keys, mostly evicted ones (restored
from their saved state): their latency is measured. The executor's RSS is read
after both, and the CPU time each phase took per call. Every counter is checked at the end
against the calls made.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections import Counter as Tally
from pathlib import Path

import perdure
from perdure._cli.workloads import REG, Figures, Params, cpu_s, engine_at, quantile, rss_mb

CHUNK = 2000


@perdure.actor(registry=REG, name="bench.Counter")
class Counter:
    def __init__(self, key: str) -> None:
        self.count = 0

    def add(self, n: int) -> int:
        self.count += n
        return self.count


async def _actors(p: Params, db: Path) -> Figures:
    n, calls, resident = int(p["actors"]), int(p["random_calls"]), int(p["resident"])
    async with engine_at(db, max_resident_actors=resident) as engine:
        await engine.actor(Counter, "warm-up").add(1)
        gc.collect()
        rss0 = rss_mb()
        cpu0, t0 = cpu_s(), time.perf_counter()
        for first in range(0, n, CHUNK):
            keys = range(first, min(n, first + CHUNK))
            await asyncio.gather(*(engine.actor(Counter, f"k{i}").add(1) for i in keys))
        created, cpu1 = time.perf_counter() - t0, cpu_s()
        gc.collect()
        rss1 = rss_mb()
        rng = random.Random(6)
        picked = [rng.randrange(n) for _ in range(calls)]
        lat: list[float] = []
        cpu2 = cpu_s()
        for i in picked:
            t = time.perf_counter()
            await engine.actor(Counter, f"k{i}").add(1)
            lat.append(time.perf_counter() - t)
        cpu3 = cpu_s()
        gc.collect()
        rss2 = rss_mb()
        stats = engine.executor_stats
        extra = Tally(picked)
        bad = 0
        for i in rng.sample(range(n), min(n, 1000)) + list(extra):
            state = await engine.actor_state(Counter, f"k{i}")
            bad += state["count"] != 1 + extra[i]
    return {
        "invocations_per_s": round(n / created, 1),
        "create_all_s": round(created, 2),
        "random_p50_ms": round(quantile(lat, 0.5) * 1e3, 3),
        "random_p99_ms": round(quantile(lat, 0.99) * 1e3, 3),
        "cpu_us_per_call": round((cpu1 - cpu0) / n * 1e6, 1),
        "random_cpu_us_per_call": round((cpu3 - cpu2) / calls * 1e6, 1),
        "rss_before_mb": round(rss0, 1),
        "rss_after_create_mb": round(rss1, 1),
        "rss_after_mb": round(rss2, 1),
        "actors_resident": stats["actors_resident"],
        "actor_evictions": stats["actor_evictions"],
        "actor_activations": stats["actor_activations"],
        "bad_states": bad,
    }


def run_actors(p: Params, db: Path) -> Figures:
    return asyncio.run(_actors(p, db))
