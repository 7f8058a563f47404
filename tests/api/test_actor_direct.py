"""Direct actor calls: a client's call on an idle actor runs at once and is recorded in one
commit; whenever that could break a promise it takes the usual path instead, and the outcome
is the same: calls one at a time, each on the state the one before left, none lost or doubled."""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest

import perdure

from .waiting import eventually

reg = perdure.Registry()
step_runs: list[str] = []
gate = threading.Event()


@perdure.actor(registry=reg)
class Account:
    def __init__(self, key: str) -> None:
        self.balance = 0
        self.history: list[int] = []

    def deposit(self, amount: int) -> int:
        self.balance += amount
        self.history.append(amount)
        return self.balance

    def peek(self) -> int:
        return self.balance

    def overdraw(self, amount: int) -> int:
        self.balance -= amount
        raise ValueError(f"cannot take {amount}")


@perdure.step(registry=reg)
def audit(key: str, amount: int) -> str:
    step_runs.append(f"{key}:{amount}")
    return f"audited {amount}"


@perdure.actor(registry=reg)
class Audited:
    def __init__(self, key: str) -> None:
        self.key = key
        self.balance = 0
        self.notes: list[str] = []

    async def deposit(self, amount: int) -> int:
        self.balance += amount  # before the durable operation: must not count twice
        self.notes.append(await audit(self.key, amount))
        self.balance += 1000 * amount
        return self.balance


@perdure.actor(registry=reg)
class Stamped:
    def __init__(self, key: str) -> None:
        self.created = perdure.now().isoformat()  # a durable operation in __init__
        self.calls = 0

    def touch(self) -> int:
        self.calls += 1
        return self.calls


@perdure.step(registry=reg)
def wait_for_gate() -> None:
    if not gate.wait(30):
        raise TimeoutError("the test never opened the gate")


@perdure.actor(registry=reg)
class Slow:
    def __init__(self, key: str) -> None:
        self.lines: list[str] = []

    async def hold(self, name: str) -> int:
        self.lines.append(f"start {name}")
        await wait_for_gate()  # holds the actor's turn until the test opens the gate
        self.lines.append(f"end {name}")
        return len(self.lines)

    def note(self, name: str) -> int:
        self.lines.append(name)
        return len(self.lines)


async def test_a_call_on_an_idle_actor_is_recorded_whole_in_one_commit(db_url: str) -> None:
    async with perdure.Engine(db_url, registry=reg) as engine:
        acct = engine.actor(Account, "a")
        assert [await acct.deposit(5), await acct.deposit(7), await acct.peek()] == [5, 12, 12]
        with pytest.raises(perdure.ActorCallFailed, match="cannot take 100"):
            await acct.overdraw(100)
        direct = engine.executor_stats["actor_direct_calls"]
        info = await engine.actor_info(Account, "a")
        oplog = (await engine.actor_oplog(Account, "a")).items
        assert await engine.actor_state(Account, "a") == {"balance": 12, "history": [5, 7]}
    assert direct == 4
    assert info.status == "idle"
    assert info.invocations == 4
    assert [(e.method, e.status, e.result) for e in oplog] == [
        ("deposit", perdure.Status.COMPLETED, 5),
        ("deposit", perdure.Status.COMPLETED, 12),
        ("peek", perdure.Status.COMPLETED, 12),
        ("overdraw", perdure.Status.FAILED, None),
    ]
    sizes = [e.state_size for e in oplog]
    assert sizes[0] is not None
    assert sizes[1] is not None
    assert sizes[2:] == [None, None]  # unchanged by peek; the failed call saved nothing


async def test_a_state_changed_by_another_executor_sends_the_call_the_usual_way(
    db_url: str, store_faults: str
) -> None:
    """Engine a holds the actor in memory; engine b changes it; a's direct call, run on its
    stale copy, must not be recorded: it runs again on the stored state."""
    async with (
        perdure.Engine(db_url, registry=reg, poll_interval=0.02) as a,
        perdure.Engine(db_url, registry=reg, poll_interval=0.02) as b,
    ):
        assert await a.actor(Account, "shared").deposit(1) == 1
        # Resident in a; with faults on, an ambiguous commit may have sent the call the usual
        # way instead, which leaves nothing in memory: then there is no stale copy to test.
        stale = a.executor_stats["actors_resident"] == 1
        assert stale or store_faults == "faults"
        assert await b.actor(Account, "shared").deposit(10) == 11
        before = a.executor_stats
        assert await a.actor(Account, "shared").deposit(100) == 111
        after = a.executor_stats
        state = await a.actor_state(Account, "shared")
    assert state == {"balance": 111, "history": [1, 10, 100]}
    if stale:
        assert after["actor_direct_calls"] == before["actor_direct_calls"]  # the direct commit was refused
        ran = after["activations"] - before["activations"]  # and the call ran the usual way:
        assert ran == 1 if store_faults == "clean" else ran >= 1  # (again, after a store fault)


async def test_concurrent_calls_on_one_actor_still_run_one_at_a_time(db_url: str) -> None:
    async with perdure.Engine(db_url, registry=reg) as engine:
        acct = engine.actor(Account, "busy")
        results = await asyncio.gather(*(acct.deposit(1) for _ in range(20)))
        state = await engine.actor_state(Account, "busy")
        stats = engine.executor_stats
    assert sorted(results) == list(range(1, 21))  # each call saw every call before it
    assert state["balance"] == 20
    assert stats["actor_direct_calls"] < 20  # the others found the actor taken
    assert stats["activations"] > 0  # and took the usual path


async def test_a_call_on_a_busy_actor_waits_its_turn(db_url: str) -> None:
    gate.clear()
    async with perdure.Engine(db_url, registry=reg) as engine:
        ref = engine.actor(Slow, "s")
        held = asyncio.ensure_future(ref.hold("first"))

        async def oplog() -> list[perdure.Status]:
            try:
                return [e.status for e in (await engine.actor_oplog(Slow, "s")).items]
            except perdure.NotFound:
                return []

        await eventually(oplog, lambda seen: seen == [perdure.Status.RUNNING], what="the first call's turn")
        second = asyncio.ensure_future(ref.note("second"))
        await eventually(oplog, lambda seen: seen[1:] == [perdure.Status.QUEUED], what="the second queued")
        gate.set()
        assert await second == 3  # after the first call's start and end
        assert await held == 2
        lines = (await engine.actor_state(Slow, "s"))["lines"]
    assert lines == ["start first", "end first", "second"]


async def test_a_durable_operation_mid_method_takes_the_usual_path_and_applies_once(db_url: str) -> None:
    step_runs.clear()
    async with perdure.Engine(db_url, registry=reg) as engine:
        ref = engine.actor(Audited, "x")
        assert await ref.deposit(1) == 1001  # + 1 before the step, + 1000 after: once each
        assert await ref.deposit(2) == 3003
        state = await engine.actor_state(Audited, "x")
        stats = engine.executor_stats
    assert state["balance"] == 3003
    assert state["notes"] == ["audited 1", "audited 2"]
    assert step_runs == ["x:1", "x:2"]  # each step ran once: nothing ran before the call was stored
    assert stats["actor_direct_calls"] == 0


async def test_a_durable_operation_in_init_takes_the_usual_path(db_url: str) -> None:
    async with perdure.Engine(db_url, registry=reg) as engine:
        ref = engine.actor(Stamped, "t")
        assert [await ref.touch(), await ref.touch()] == [1, 2]
        state = await engine.actor_state(Stamped, "t")
        oplog = (await engine.actor_oplog(Stamped, "t")).items
    assert state["calls"] == 2
    assert isinstance(state["created"], str)
    assert [e.status for e in oplog] == [perdure.Status.COMPLETED] * 2


latch = threading.Event()


@perdure.actor(registry=reg)
class Latch:
    def __init__(self, key: str) -> None:
        self.opened = False

    def wait_open(self) -> bool:
        self.opened = latch.wait(30)  # blocks its thread, never the loop
        return self.opened

    def open(self) -> bool:
        latch.set()
        return True


async def test_a_blocking_method_holds_only_its_own_thread(db_url: str) -> None:
    """A direct call's def method runs in a thread of its own: while one blocks, calls on other
    actors run (one of them unblocks it) and the engine answers."""
    latch.clear()
    async with perdure.Engine(db_url, registry=reg) as engine:
        blocked = asyncio.ensure_future(engine.actor(Latch, "waits").wait_open())
        assert await engine.actor(Account, "meanwhile").deposit(5) == 5
        assert not blocked.done()
        assert await engine.actor(Latch, "opens").open() is True
        assert await blocked is True
        state = await engine.actor_state(Latch, "waits")
    assert state == {"opened": True}


async def test_closing_the_engine_ends_the_method_threads(db_url: str) -> None:
    def method_threads() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if t.name.startswith("perdure-method")}

    async def left() -> set[threading.Thread]:
        return method_threads() - before

    before = method_threads()  # other engines' threads, still ending
    async with perdure.Engine(db_url, registry=reg) as engine:
        await asyncio.gather(*(engine.actor(Account, f"t{i}").deposit(1) for i in range(10)))
        assert await left()  # the calls ran in method threads
    await eventually(left, lambda alive: not alive, what="the method threads to end")


async def test_an_engine_relaxes_the_young_generation_while_its_executor_runs(db_url: str) -> None:
    cpython = (700, 10, 10)
    before = gc.get_threshold()
    gc.set_threshold(*cpython)
    try:
        async with perdure.Engine(db_url, registry=reg) as engine:
            assert gc.get_threshold() == (10_000, 10, 10)
            assert await engine.actor(Account, "gc").deposit(5) == 5
        assert gc.get_threshold() == cpython
    finally:
        gc.set_threshold(*before)
