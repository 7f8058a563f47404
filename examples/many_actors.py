"""Ten actor types x 1,000 keys: every actor called, evicted, called again, restarted.

    python examples/many_actors.py [--keys 1000] [--resident 2000]

Each actor counts its calls. With more actors than ``max_resident_actors``,
most are evicted from memory after their first call and come back from their
saved state for the second; then a new engine (a restart) calls them all a
third time. Every count must be 3.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import perdure

STATE = Path(tempfile.gettempdir()) / "perdure-example-many-actors"
STATE.mkdir(exist_ok=True)
registry = perdure.Registry()


class Tally:
    def __init__(self, key: str) -> None:
        self.key = key
        self.calls = 0

    def hit(self) -> int:
        self.calls += 1
        return self.calls


TYPES: list[type[Tally]] = [
    perdure.actor(registry=registry)(type(f"Tally{n}", (Tally,), {})) for n in range(10)
]


async def call_all(engine: perdure.Engine, keys: int) -> list[int]:
    counts: list[int] = []
    for cls in TYPES:
        counts += await asyncio.gather(*(engine.actor(cls, f"k{k}").hit() for k in range(keys)))
    return counts


async def main(keys: int, resident: int) -> None:
    db = STATE / f"many-{time.time_ns()}.db"
    url = f"sqlite:///{db}"
    n = len(TYPES) * keys
    async with perdure.Engine(url, registry=registry, max_resident_actors=resident) as engine:
        t = time.perf_counter()
        assert await call_all(engine, keys) == [1] * n
        print(f"{n} actors made and called once in {time.perf_counter() - t:.1f} s")
        assert await call_all(engine, keys) == [2] * n
        stats = engine.executor_stats
        print(
            f"called again: {stats['actors_resident']} resident, {stats['actor_evictions']} evictions, "
            f"{stats['actor_activations']} activations (restored from saved state or made)"
        )
    async with perdure.Engine(url, registry=registry, max_resident_actors=resident) as engine:
        assert await call_all(engine, keys) == [3] * n
        listed = 0
        page = await engine.list_actors(limit=1000)
        while True:
            listed += len(page.items)
            if page.cursor is None:
                break
            page = await engine.list_actors(limit=1000, cursor=page.cursor)
        assert listed == n
        print(f"after a restart all {n} actors answered with 3 calls each; {listed} listed")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1000, help="keys per actor type")
    parser.add_argument("--resident", type=int, default=2000, help="max_resident_actors")
    args = parser.parse_args()
    asyncio.run(main(args.keys, args.resident))
