"""One actor called at once through two executors sharing the database: its calls still
run one at a time, each on the state the one before it left, none lost, none twice."""

from __future__ import annotations

import asyncio

import perdure

reg = perdure.Registry()


@perdure.actor(registry=reg)
class Tally:
    def __init__(self, key: str) -> None:
        self.lines: list[str] = []

    async def mark(self, who: str, n: int) -> int:
        self.lines.append(f"start {who}{n}")
        await perdure.sleep(0.002)  # a wait in the middle: another executor could step in here
        self.lines.append(f"end {who}{n}")
        return len(self.lines)


async def test_an_actor_is_never_active_in_two_executors_at_once(db_url: str) -> None:
    calls = 15
    async with (
        perdure.Engine(db_url, registry=reg, poll_interval=0.02) as a,
        perdure.Engine(db_url, registry=reg, poll_interval=0.02) as b,
    ):
        results = await asyncio.gather(
            *(a.actor(Tally, "t").call(Tally.mark, "a", n) for n in range(calls)),
            *(b.actor(Tally, "t").call(Tally.mark, "b", n) for n in range(calls)),
        )
        lines = (await a.actor_state(Tally, "t"))["lines"]
        ran_in = (a.executor_stats["activations"], b.executor_stats["activations"])
    # Every call saw the state of all the calls before it: lengths 2, 4, ..., 4 * calls.
    assert sorted(results) == list(range(2, 4 * calls + 1, 2))
    assert len(lines) == 4 * calls
    # Never interleaved: each start is followed by its own end.
    assert lines[1::2] == [line.replace("start", "end") for line in lines[0::2]]
    assert sorted(x.split()[1] for x in lines[0::2]) == sorted(
        [f"a{n}" for n in range(calls)] + [f"b{n}" for n in range(calls)]
    )
    # Calls made through either engine may run in either executor (each claims what is ready);
    # every one ran somewhere, once.
    assert sum(ran_in) >= 2 * calls, ran_in
