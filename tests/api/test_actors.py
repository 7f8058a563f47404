"""Durable actors through ``import perdure`` only: state that survives, one call at a time,
exactly-once calls from durable code, eviction, ephemeral actors, operations."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

import pytest

import perdure

reg = perdure.Registry()


@dataclass
class Item:
    sku: str
    qty: int


@perdure.actor(registry=reg)
class PurchaseHistory:
    def __init__(self, user_id: str) -> None:
        self.orders: list[list[Item]] = []

    def add_order(self, items: list[Item]) -> int:
        self.orders.append(items)
        return len(self.orders)

    def count(self) -> int:
        return len(self.orders)


@perdure.actor(registry=reg)
class Cart:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.items: list[Item] = []

    def add_item(self, item: Item) -> int:
        self.items.append(item)
        return len(self.items)

    async def checkout(self) -> int:
        orders = await perdure.actor_ref(PurchaseHistory, self.user_id).call(
            PurchaseHistory.add_order, list(self.items)
        )
        self.items.clear()
        return orders

    def first(self) -> Item | None:
        return self.items[0] if self.items else None


@perdure.actor(registry=reg)
class Log:
    """Records how its calls interleave: every call writes 'start' and 'end' around a wait."""

    def __init__(self, key: str) -> None:
        self.lines: list[str] = []

    async def write(self, n: int) -> int:
        self.lines.append(f"start {n}")
        await perdure.sleep(0.001)  # a durable wait in the middle of the call
        self.lines.append(f"end {n}")
        return len(self.lines)

    def read(self) -> list[str]:
        return self.lines

    async def stall(self) -> None:
        await perdure.sleep(86_400)  # busy for a day


@perdure.actor(registry=reg)
class Counter:
    def __init__(self, key: str) -> None:
        self.value = 0
        self.note: Any = None

    def add(self, n: int) -> int:
        self.value += n
        return self.value

    def add_then_fail(self, n: int) -> int:
        self.value += n
        raise ValueError("refused")

    def keep_unsaveable(self) -> None:
        self.value += 100
        self.note = object()

    async def add_async(self, n: int) -> int:
        self.value += n
        return self.value


@perdure.actor(registry=reg, durable=False)
class Calculator:
    calls = 0

    def __init__(self, key: str) -> None:
        self.key = key
        self.seen = 0

    def square(self, x: int) -> int:
        self.seen += 1  # a fresh object every call: always 1
        return x * x * self.seen

    async def describe(self) -> str:
        return f"calculator {self.key}"


@perdure.workflow(registry=reg)
async def shop(user: str, n: int) -> int:
    cart = perdure.actor_ref(Cart, user)
    for i in range(n):
        await cart.add_item(Item(f"sku-{i}", i))
    return await cart.call(Cart.checkout)


@perdure.workflow(registry=reg)
def shop_sync(user: str) -> list[int]:
    counter = perdure.actor_ref(Counter, user)
    # A def workflow gets the values themselves (typed so by the mypy plugin perdure.mypy).
    first = counter.add(5)
    second = counter.call(Counter.add, 6)
    squared = perdure.actor_ref(Calculator, "c").square(7)
    return [first, second, squared]


@perdure.workflow(registry=reg)
async def remind_later(user: str) -> str:
    await perdure.recv("go")
    return f"reminded {user}"


@perdure.actor(registry=reg)
class Scheduler:
    def __init__(self, key: str) -> None:
        self.started: list[str] = []

    async def plan(self, user: str) -> str:
        child = await perdure.start_child(remind_later, user, id=f"remind-{user}")
        self.started.append(child.id)
        return child.id


@perdure.workflow(registry=reg)
async def fire_and_forget(user: str) -> str:
    return await perdure.actor_ref(Counter, user).enqueue(Counter.add, 1)


def engine(db_url: str, **options: Any) -> perdure.Engine:
    return perdure.Engine(db_url, registry=reg, poll_interval=0.02, **options)


async def test_state_survives_a_restart_and_calls_return_typed_values(db_url: str) -> None:
    async with engine(db_url) as e:
        cart = e.actor(Cart, "u1")
        assert await cart.add_item(Item("a", 1)) == 1
        assert await cart.call(Cart.add_item, Item("b", 2)) == 2
    async with engine(db_url) as e:
        first = await e.actor(Cart, "u1").first()
        assert first == Item("a", 1)  # typed by the method's return annotation
        assert await e.actor_state(Cart, "u1") == {
            "user_id": "u1",
            "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 2}],
        }


async def test_an_actor_calls_another_exactly_once_and_commits_its_own_state(db_url: str) -> None:
    async with engine(db_url) as e:
        handle = await e.start(shop, "u2", 3)
        assert await handle.result() == 1
        assert await e.actor_state(Cart, "u2") == {"user_id": "u2", "items": []}
        orders = (await e.actor_state(PurchaseHistory, "u2"))["orders"]
        assert orders == [[{"sku": f"sku-{i}", "qty": i} for i in range(3)]]
        kinds = [h.kind for h in await handle.history()]
        assert kinds == ["actor_call", "child_result"] * 4


async def test_calls_to_one_actor_run_one_at_a_time_in_arrival_order(db_url: str) -> None:
    async with engine(db_url) as e:
        log = e.actor(Log, "k")
        ids = [await log.write.enqueue(n) for n in range(5)]
        results = await asyncio.gather(*(log.write(n) for n in range(5, 15)))
        lines = await log.read()
        # Never interleaved: every start is followed by its own end.
        assert lines[0::2] == [line.replace("end", "start") for line in lines[1::2]]
        assert sorted(results) == list(range(12, 32, 2))
        # The first five, enqueued one after the other, ran in that order, before the rest.
        assert [int(x.split()[1]) for x in lines[0:10:2]] == [0, 1, 2, 3, 4]
        oplog = (await e.actor_oplog(Log, "k")).items
        assert [o.id for o in oplog[:5]] == ids
        order_run = [int(x.split()[1]) for x in lines[0::2]]
        order_logged = [o.arguments["n"] for o in oplog if o.method == "write"]
        assert order_run == order_logged


async def test_a_failed_call_leaves_the_state_as_it_was(db_url: str) -> None:
    async with engine(db_url) as e:
        c = e.actor(Counter, "f")
        assert await c.add(1) == 1
        with pytest.raises(perdure.ActorCallFailed) as failed:
            await c.add_then_fail(10)
        assert failed.value.error_type == "ValueError"
        assert failed.value.actor == "Counter/f"
        assert failed.value.method == "add_then_fail"
        assert await c.add(1) == 2  # not 12: the failed call's change was not kept
        assert (await e.actor_state(Counter, "f"))["value"] == 2


async def test_state_that_cannot_be_saved_fails_the_call_naming_the_attribute(db_url: str) -> None:
    async with engine(db_url) as e:
        c = e.actor(Counter, "bad")
        await c.add(3)
        with pytest.raises(perdure.ActorCallFailed, match="attribute 'note'"):
            await c.keep_unsaveable()
        assert await e.actor_state(Counter, "bad") == {"value": 3, "note": None}
        assert await c.add(1) == 4


async def test_an_idempotency_key_makes_a_repeated_call_run_once(db_url: str) -> None:
    async with engine(db_url) as e:
        assert await e.invoke(Counter, "idem", "add", 5, idempotency_key="req-1") == 5
        assert await e.invoke(Counter, "idem", "add", 5, idempotency_key="req-1") == 5
        assert await e.invoke(Counter, "idem", "add", 5, idempotency_key="req-2") == 10
        with pytest.raises(perdure.Conflict, match="req-1"):
            await e.invoke(Counter, "idem", "add", 6, idempotency_key="req-1")
        assert (await e.actor_info(Counter, "idem")).invocations == 2


async def test_a_call_result_that_no_longer_fits_the_return_annotation_says_so(db_url: str) -> None:
    before, after = perdure.Registry(), perdure.Registry()

    @perdure.actor(registry=before, name="Price")
    class PriceThen:
        def __init__(self, key: str) -> None:
            self.key = key

        def quote(self) -> str:
            return "twelve"

    @perdure.actor(registry=after, name="Price")
    class PriceNow:
        def __init__(self, key: str) -> None:
            self.key = key

        def quote(self) -> int:
            return 12

    async with perdure.Engine(db_url, registry=before) as e:
        call = await e.enqueue(PriceThen, "p", "quote")
        assert await e.invocation_result(call, timeout=10) == "twelve"
    async with perdure.Engine(db_url, registry=after) as e:
        with pytest.raises(perdure.InvalidState, match=r"call '.*' of actor 'Price/p' returned a value that"):
            await e.invocation_result(call)


async def test_an_enqueued_call_is_awaited_by_its_id_within_a_timeout(db_url: str) -> None:
    async with engine(db_url) as e:
        added = await e.enqueue(Counter, "q", "add", 4)
        assert added.startswith("Counter/q/")
        assert await e.invocation_result(added, timeout=10) == 4
        assert await e.invocation_result(added) == 4  # ended: answered at once, again
        failed = await e.enqueue(Counter, "q", "add_then_fail", 1)
        with pytest.raises(perdure.ActorCallFailed, match="refused") as exc:
            await e.invocation_result(failed, timeout=10)
        assert (exc.value.actor, exc.value.method) == ("Counter/q", "add_then_fail")
        stuck = await e.enqueue(Log, "stuck", "stall")
        for timeout in (0, 0.05):
            with pytest.raises(perdure.ResultTimeout, match=f"actor call '{stuck}' has not ended"):
                await e.invocation_result(stuck, timeout=timeout)
        with pytest.raises(perdure.NotFound, match="no actor call 'Counter/q/nope'"):
            await e.invocation_result("Counter/q/nope")
        await e.actor(Cart, "q").add_item(Item("pen", 1))
        assert await e.actor(Cart, "q").checkout() == 1
        made_by_an_actor = (await e.actor_oplog(PurchaseHistory, "q")).items[0].id
        assert made_by_an_actor.startswith("PurchaseHistory/q/Cart/q/")
        assert await e.invocation_result(made_by_an_actor, timeout=1) == 1
        for bad in ("Counter/q", "Counter//x", "a/b/c/", 7):
            with pytest.raises(perdure.InvalidArgument, match=r"call id|must not be empty"):
                await e.invocation_result(bad)  # type: ignore[arg-type]
        with pytest.raises(perdure.InvalidArgument, match="timeout"):
            await e.invocation_result(added, timeout=-1)


async def test_evicted_actors_come_back_from_their_saved_state(db_url: str) -> None:
    async with engine(db_url, max_resident_actors=3) as e:
        for round_ in range(1, 4):
            values = await asyncio.gather(*(e.actor(Counter, f"c{i}").add(i) for i in range(10)))
            assert values == [i * round_ for i in range(10)]
        stats = e.executor_stats
        assert stats["actors_resident"] <= 3
        assert stats["actor_evictions"] >= 10
        assert stats["actor_activations"] >= 20  # the first calls, then the evicted ones again
    async with engine(db_url, max_resident_actors=3) as e:
        assert await e.actor(Counter, "c7").add(0) == 21


async def test_a_durable_call_happens_once_however_often_the_caller_replays(db_url: str) -> None:
    async with engine(db_url) as e:
        handle = await e.start(fire_and_forget, "ff")
        invocation = await handle.result()
        assert invocation.startswith("Counter/ff/")
        for _ in range(20):
            if (await e.actor_info(Counter, "ff")).invocations == 1:
                break
            await asyncio.sleep(0.05)
        assert (await e.actor_state(Counter, "ff"))["value"] == 1
        oplog = (await e.actor_oplog(Counter, "ff")).items
        assert [o.id for o in oplog] == [invocation]


async def test_a_workflow_an_actor_starts_outlives_the_call(db_url: str) -> None:
    async with engine(db_url) as e:
        wid = await e.actor(Scheduler, "s").call(Scheduler.plan, "ada")
        assert await e.actor_state(Scheduler, "s") == {"started": [wid]}
        handle = await e.get(wid)
        assert await handle.status() in (
            perdure.Status.PENDING,
            perdure.Status.RUNNING,
            perdure.Status.WAITING,
        )
        await handle.send("go", True)
        assert await handle.result(timeout=30) == "reminded ada"


async def test_def_workflows_and_methods_call_actors_and_ephemeral_ones(db_url: str) -> None:
    async with engine(db_url) as e:
        assert await (await e.start(shop_sync, "s")).result() == [5, 11, 49]
        # Ephemeral: a fresh object per call, nothing saved anywhere.
        calc = e.actor(Calculator, "x")
        assert [await calc.square(3), await calc.square(3)] == [9, 9]
        assert await calc.describe() == "calculator x"
        assert [a.type for a in (await e.list_actors()).items] == ["Counter"]
        with pytest.raises(perdure.NotFound):
            await e.actor_state(Calculator, "x")
        with pytest.raises(perdure.InvalidArgument, match="ephemeral"):
            await calc.square.enqueue(3)


async def test_listing_reading_and_deleting_actors(db_url: str) -> None:
    async with engine(db_url) as e:
        for key in ("alice", "alfred", "bob"):
            await e.actor(Counter, key).add(1)
        await e.actor(Cart, "alice").add_item(Item("z", 9))
        page = await e.list_actors(type=Counter, limit=2)
        assert [(a.type, a.key) for a in page.items] == [("Counter", "alfred"), ("Counter", "alice")]
        assert page.cursor is not None
        rest = await e.list_actors(type="Counter", limit=2, cursor=page.cursor)
        assert [a.key for a in rest.items] == ["bob"]
        assert rest.cursor is None
        found = [(a.type, a.key) for a in (await e.list_actors(key_prefix="al")).items]
        assert found == [("Cart", "alice"), ("Counter", "alfred"), ("Counter", "alice")]
        assert {a.status for a in (await e.list_actors()).items} == {"idle"}
        assert (await e.list_actors(status="busy")).items == []
        oplog = await e.actor_oplog(Cart, "alice")
        [entry] = oplog.items
        assert (entry.method, entry.arguments, entry.result, entry.status) == (
            "add_item",
            {"item": {"sku": "z", "qty": 9}},
            1,
            perdure.Status.COMPLETED,
        )
        assert entry.state_size is not None
        assert entry.ended_at is not None
        assert entry.ended_at >= entry.enqueued_at
        await e.delete_actor(Counter, "bob")
        with pytest.raises(perdure.NotFound):
            await e.actor_state(Counter, "bob")
        assert await e.actor(Counter, "bob").add(2) == 2  # a new one, from __init__


async def test_bad_input_is_refused_with_a_clear_error(db_url: str) -> None:
    async with engine(db_url) as e:
        c = e.actor(Counter, "k")
        with pytest.raises(perdure.InvalidArgument, match="no public method 'nope'"):
            await c.nope()  # type: ignore[misc]  # the mypy plugin sees it too
        with pytest.raises(perdure.InvalidArgument, match="do not fit"):
            await c.add("three")  # type: ignore[arg-type]
        with pytest.raises(perdure.InvalidArgument, match="wrong arguments"):
            await c.add(1, 2)  # type: ignore[call-arg]
        with pytest.raises(perdure.InvalidArgument, match="'/'"):
            e.actor(Counter, "a/b")
        with pytest.raises(perdure.RegistrationError):
            e.actor(cast(Any, "Nope"), "k")
        with pytest.raises(perdure.InvalidArgument, match="limit"):
            await e.list_actors(limit=0)
        with pytest.raises(perdure.NotFound):
            await e.actor_oplog(Counter, "never-called")
        with pytest.raises(perdure.OutsideWorkflow):
            perdure.actor_ref(Counter, "k")
        with pytest.raises(AttributeError):
            c._private  # noqa: B018 - private names are not methods to call
        assert (await e.list_actors()).items == []  # none of it created an actor


def test_the_decorator_checks_the_class() -> None:
    local = perdure.Registry()
    with pytest.raises(perdure.InvalidArgument, match="key"):

        @perdure.actor(registry=local)
        class NoKey:
            def __init__(self) -> None: ...

            def m(self) -> None: ...

    with pytest.raises(perdure.InvalidArgument, match="version"):
        perdure.actor(version=0)
    with pytest.raises(perdure.InvalidArgument, match="decorates a class"):
        perdure.actor(registry=local)(len)  # type: ignore[arg-type]


async def test_an_upgrade_hook_reshapes_state_saved_by_an_older_version(db_url: str) -> None:
    v1 = perdure.Registry()

    @perdure.actor(name="Account", registry=v1)
    class AccountV1:
        def __init__(self, key: str) -> None:
            self.cents = 0

        def deposit(self, cents: int) -> int:
            self.cents += cents
            return self.cents

    v2 = perdure.Registry()

    @perdure.actor(name="Account", registry=v2, version=2)
    class AccountV2:
        def __init__(self, key: str) -> None:
            self.balance: Money = Money(0)

        @classmethod
        def upgrade(cls, state: dict[str, Any], from_version: int) -> dict[str, Any]:
            assert from_version == 1
            return {"balance": {"cents": state["cents"]}}

        def deposit(self, cents: int) -> int:
            self.balance = Money(self.balance.cents + cents)
            return self.balance.cents

    async with perdure.Engine(db_url, registry=v1) as e:
        assert await e.actor(AccountV1, "a").deposit(250) == 250
    async with perdure.Engine(db_url, registry=v2) as e:
        assert await e.actor(AccountV2, "a").deposit(50) == 300
        info = await e.actor_info("Account", "a")
        assert info.state_version == 2
        assert await e.actor_state("Account", "a") == {"balance": {"cents": 300}}
    async with perdure.Engine(db_url, registry=v1, poll_interval=0.02) as e:
        # Version 1 cannot read what version 2 wrote: the call parks, it does not guess.
        iid = await e.actor(AccountV1, "a").deposit.enqueue(1)
        for _ in range(100):
            last = (await e.actor_oplog("Account", "a")).items[-1]
            if last.status is perdure.Status.PARKED:
                break
            await asyncio.sleep(0.02)
        assert (last.id, last.status) == (iid, perdure.Status.PARKED)
        assert await e.actor_state("Account", "a") == {"balance": {"cents": 300}}


@dataclass
class Money:
    cents: int


def test_the_sync_engine_calls_actors(db_url: str) -> None:
    with perdure.Engine(db_url, registry=reg) as e:
        c = e.actor(Counter, "sync")
        assert c.add(2) == 2
        assert c.call(Counter.add_async, 3) == 5
        assert c.add.enqueue(1).startswith("Counter/sync/")
        assert e.invoke(Counter, "sync", "add", 0, idempotency_key="r") >= 5
        assert e.actor_state(Counter, "sync")["value"] >= 5
        assert [x.key for x in e.list_actors().items] == ["sync"]
