"""Workflow time and messaging: durable sleep, messages, events, cancellation at a
wait, child workflows and continue-as-new, through ``import perdure`` only.

Long waits run on ``perdure.testing.VirtualClock``: the assertions read the
durable (virtual) timestamps the workflows recorded, never the wall clock.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

import perdure
import perdure.testing

from .waiting import eventually

FLAVOURS = pytest.mark.parametrize("flavour", ["async", "def"])
"""Run the test with an ``async def`` workflow and with a ``def`` one."""
DAY = timedelta(days=1)
POLL = 0.02
"""The engines' poll interval: how soon they see work another engine (or a commit retried
after a lost acknowledgement) made ready."""


def virtual_now(clock: perdure.testing.VirtualClock) -> datetime:
    return datetime.fromtimestamp(clock.now(), UTC)


async def status_of(engine: perdure.Engine, workflow_id: str) -> perdure.Status | None:
    """The instance's status, or None while it does not exist yet."""
    try:
        return (await engine.info(workflow_id)).status
    except perdure.NotFound:
        return None


def sleep_entries(history: list[perdure.HistoryEntry]) -> list[float]:
    """The deadlines recorded by ``perdure.sleep`` calls, in journal order."""
    return [cast(float, e.result) for e in history if e.kind == "sleep"]


# --- durable sleep -------------------------------------------------------------


@FLAVOURS
async def test_a_short_sleep_waits_in_memory_and_wakes_after_its_recorded_deadline(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    nap: perdure.Workflow[[], list[datetime]]
    if flavour == "async":

        @perdure.workflow(name="nap", registry=registry)
        async def nap_async() -> list[datetime]:
            before = perdure.now()
            await perdure.sleep(0.05)
            return [before, perdure.now()]

        nap = nap_async
    else:

        @perdure.workflow(name="nap", registry=registry)
        def nap_def() -> list[datetime]:
            before = perdure.now()
            perdure.sleep(timedelta(milliseconds=50))
            return [before, perdure.now()]

        nap = nap_def

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
        handle = await engine.start(nap)
        before, after = await handle.result(timeout=10)
        history = await handle.history()
        activations = engine.executor_stats["activations"]

    assert [e.kind for e in history] == ["now", "sleep", "now"]
    (deadline,) = sleep_entries(history)
    assert deadline >= before.timestamp() + 0.05, "the deadline is the sleep's start plus its duration"
    assert after.timestamp() >= deadline, f"woke at {after} before the deadline {deadline}"
    assert activations == 1, "a sleep shorter than unload_after keeps the instance in memory"


@FLAVOURS
async def test_a_long_sleep_unloads_the_instance_as_waiting_and_wakes_at_its_deadline(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    nap: perdure.Workflow[[], datetime]
    if flavour == "async":

        @perdure.workflow(name="nap", registry=registry)
        async def nap_async() -> datetime:
            await perdure.sleep(0.4)
            return perdure.now()

        nap = nap_async
    else:

        @perdure.workflow(name="nap", registry=registry)
        def nap_def() -> datetime:
            perdure.sleep(0.4)
            return perdure.now()

        nap = nap_def

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL, unload_after=0.1) as engine:
        handle = await engine.start(nap)
        info = await eventually(
            handle.info, lambda i: i.status is perdure.Status.WAITING, what="the sleeping workflow to unload"
        )
        (deadline,) = sleep_entries(await handle.history())
        assert info.wake_at is not None
        assert info.wake_at.timestamp() == pytest.approx(deadline, abs=1e-6)
        woke = await handle.result(timeout=10)
        activations = engine.executor_stats["activations"]

    assert woke.timestamp() >= deadline, f"woke at {woke.timestamp()}, before its deadline {deadline}"
    assert activations == 2, "unloaded while it slept, loaded again at the deadline"


@FLAVOURS
async def test_invalid_sleeps_raise_invalid_argument_and_leave_the_journal_intact(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    naive = datetime(2030, 1, 1)  # no tzinfo: the invalid input under test
    bad: list[Any] = [-1, -0.001, math.nan, math.inf, timedelta(seconds=-5), "soon", True]
    naps: perdure.Workflow[[], list[str]]
    if flavour == "async":

        @perdure.workflow(name="naps", registry=registry)
        async def naps_async() -> list[str]:
            errors = []
            for value in bad:
                try:
                    await perdure.sleep(value)
                except perdure.InvalidArgument as exc:
                    errors.append(str(exc))
            try:
                await perdure.sleep_until(naive)
            except perdure.InvalidArgument as exc:
                errors.append(str(exc))
            await perdure.sleep(0)  # a valid one still works, at the next position
            await perdure.sleep_until(datetime(2000, 1, 1, tzinfo=UTC))  # in the past: returns at once
            return errors

        naps = naps_async
    else:

        @perdure.workflow(name="naps", registry=registry)
        def naps_def() -> list[str]:
            errors = []
            for value in bad:
                try:
                    perdure.sleep(value)
                except perdure.InvalidArgument as exc:
                    errors.append(str(exc))
            try:
                perdure.sleep_until(naive)
            except perdure.InvalidArgument as exc:
                errors.append(str(exc))
            perdure.sleep(0)
            perdure.sleep_until(datetime(2000, 1, 1, tzinfo=UTC))
            return errors

        naps = naps_def

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
        handle = await engine.start(naps)
        errors = await handle.result(timeout=10)
        history = await handle.history()

    assert len(errors) == len(bad) + 1, errors
    assert all(">= 0" in e for e in errors[:2]), errors
    assert all("seconds or a timedelta" in e for e in errors[2:4]), errors
    assert ">= 0" in errors[4], errors
    assert all("seconds or a timedelta" in e for e in errors[5:7]), errors
    assert "timezone-aware" in errors[7], errors
    assert [(e.position, e.kind) for e in history] == [(0, "sleep"), (1, "sleep")], (
        "refused sleeps record nothing"
    )


@FLAVOURS
async def test_thirty_days_of_daily_reminders_run_on_the_virtual_clock(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    clock = perdure.testing.VirtualClock()
    start = virtual_now(clock)
    reminded: list[tuple[str, int]] = []

    @perdure.step(registry=registry)
    def remind(user: str, day: int) -> None:
        reminded.append((user, day))

    reminders: perdure.Workflow[[str], list[datetime]]
    if flavour == "async":

        @perdure.workflow(name="reminders", registry=registry)
        async def reminders_async(user: str) -> list[datetime]:
            sent = []
            for day in range(30):
                await perdure.sleep(DAY)
                sent.append(perdure.now())
                await remind(user, day)
            return sent

        reminders = reminders_async
    else:

        @perdure.workflow(name="reminders", registry=registry)
        def reminders_def(user: str) -> list[datetime]:
            sent = []
            first = perdure.now()
            for day in range(30):
                perdure.sleep_until(first + (day + 1) * DAY)
                sent.append(perdure.now())
                remind(user, day)
            return sent

        reminders = reminders_def

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL, clock=clock) as engine:
        handle = await engine.start(reminders, "ada")
        sent = await handle.result(timeout=30)  # without the virtual clock: 30 days
        deadlines = sleep_entries(await handle.history())

    assert reminded == [("ada", day) for day in range(30)], "each reminder once, in order"
    assert len(sent) == 30
    for day, at in enumerate(sent):
        assert at >= start + (day + 1) * DAY, f"reminder {day} at {at}, before day {day + 1} began"
        assert at.timestamp() >= deadlines[day], f"reminder {day} sent before its sleep's deadline"
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert all(gap >= DAY for gap in gaps), f"reminders less than a day apart: {gaps}"
    assert sent[-1] < start + 31 * DAY, f"durable time ran on to {sent[-1]}, past the 30 days"
    assert virtual_now(clock) >= start + 30 * DAY, "the virtual clock moved 30 days"


# --- messages --------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    sku: str
    qty: int


@FLAVOURS
async def test_messages_arrive_in_send_order_per_topic_including_while_waiting(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    inbox: perdure.Workflow[[], list[str]]
    if flavour == "async":

        @perdure.workflow(name="inbox", registry=registry)
        async def inbox_async() -> list[str]:
            a = [await perdure.recv("a", type=str) for _ in range(3)]
            b = [await perdure.recv("b", type=str) for _ in range(2)]
            return a + b

        inbox = inbox_async
    else:

        @perdure.workflow(name="inbox", registry=registry)
        def inbox_def() -> list[str]:
            a = [cast(str, perdure.recv("a", type=str)) for _ in range(3)]
            b = [cast(str, perdure.recv("b", type=str)) for _ in range(2)]
            return a + b

        inbox = inbox_def

    async with perdure.Engine(db_url, registry=registry, executor=False) as client:
        handle = await client.start(inbox, id="inbox")
        for topic, value in [("a", "a1"), ("b", "b1"), ("a", "a2")]:
            await client.send("inbox", topic, value)
        async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
            own = await engine.get("inbox")
            await eventually(
                own.history,
                lambda h: [e.result for e in h if e.kind == "recv"] == ["a1", "a2"],
                what="a1 and a2 to be received, then a wait for a3",
            )
            await eventually(own.status, lambda s: s is perdure.Status.WAITING, what="the wait for a3")
            await handle.send("b", "b2")
            await handle.send("a", "a3")
            assert await own.result(timeout=10) == ["a1", "a2", "a3", "b1", "b2"]


async def test_recv_decodes_messages_into_the_requested_dataclass_also_on_replay(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def fulfil() -> list[str]:
        first = await perdure.recv("order", type=Order)
        second = await perdure.recv("order", type=Order)
        await perdure.sleep(DAY)  # unloads: the receives replay from the journal
        return [f"{type(o).__name__}:{o.sku}x{o.qty * 10}" for o in (first, second)]

    async with perdure.Engine(
        db_url, registry=registry, poll_interval=POLL, clock=perdure.testing.VirtualClock()
    ) as engine:
        handle = await engine.start(fulfil)
        await handle.send("order", Order("apple", 3))
        await handle.send("order", {"sku": "pear", "qty": 1})  # plain JSON of the same shape
        assert await handle.result(timeout=10) == ["Order:applex30", "Order:pearx10"]


@FLAVOURS
async def test_recv_returns_none_when_its_timeout_passes_and_a_later_message_still_arrives(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    clock = perdure.testing.VirtualClock()
    start = virtual_now(clock)
    ping: perdure.Workflow[[], list[str | None]]
    if flavour == "async":

        @perdure.workflow(name="ping", registry=registry)
        async def ping_async() -> list[str | None]:
            first = await perdure.recv("pong", timeout=timedelta(hours=2))
            perdure.set_event("gave up at", perdure.now())
            second = await perdure.recv("pong")
            return [first, second]

        ping = ping_async
    else:

        @perdure.workflow(name="ping", registry=registry)
        def ping_def() -> list[str | None]:
            first = cast("str | None", perdure.recv("pong", timeout=7200))
            perdure.set_event("gave up at", perdure.now())
            second = cast(str, perdure.recv("pong"))
            return [first, second]

        ping = ping_def

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL, clock=clock) as engine:
        handle = await engine.start(ping)
        gave_up = datetime.fromisoformat(await handle.wait_event("gave up at", timeout=10))
        await handle.send("pong", "late")
        assert await handle.result(timeout=10) == [None, "late"]
        history = await handle.history()

    assert gave_up >= start + timedelta(hours=2), f"gave up at {gave_up}, before the 2 hours passed"
    assert [(e.kind, e.result) for e in history if e.kind == "recv"] == [("recv", None), ("recv", "late")]
    deadline = next(cast(float, e.result) for e in history if e.kind == "deadline")
    assert deadline == pytest.approx((start + timedelta(hours=2)).timestamp(), abs=1.0)


async def test_a_repeated_idempotency_key_delivers_the_message_once(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def collect() -> list[str]:
        items = []
        while (item := await perdure.recv("items", type=str)) != "end":
            items.append(item)
        return items

    async with perdure.Engine(db_url, registry=registry, executor=False) as client:
        handle = await client.start(collect, id="collect")
        await client.send("collect", "items", "x", idempotency_key="k1")
        await handle.send("items", "x", idempotency_key="k1")
        await client.send("collect", "items", "y", idempotency_key="k2")
        async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
            own = await engine.get("collect")
            await eventually(
                own.history,
                lambda h: [e.result for e in h if e.kind == "recv"] == ["x", "y"],
                what="both distinct messages to be received",
            )
            await handle.send("items", "x", idempotency_key="k1")  # already consumed: still a repeat
            await handle.send("items", "end", idempotency_key="k3")
            assert await own.result(timeout=10) == ["x", "y"]
        # The workflow has ended: a repeat of a delivered key answers as the first call did
        # (a client retrying after a lost answer must not see an error); a new one is refused.
        await handle.send("items", "end", idempotency_key="k3")
        with pytest.raises(perdure.InvalidState, match="completed"):
            await handle.send("items", "more", idempotency_key="k4")


async def test_a_send_whose_commit_is_acknowledged_late_is_delivered_once(
    db_url: str, registry: perdure.Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without an idempotency key too: the engine retries a commit whose answer was lost."""

    @perdure.workflow(registry=registry)
    async def collect() -> list[int]:
        items = []
        while (item := await perdure.recv("items", type=int)) >= 0:
            items.append(item)
        return items

    monkeypatch.setenv("PERDURE_STORE_FAULTS", "ambiguous=0.3")  # 30% of calls: applied, then an error
    monkeypatch.setenv("PERDURE_SEED", "4")
    async with perdure.Engine(db_url, registry=registry, executor=False) as client:
        handle = await client.start(collect, id="collect")
        for n in [*range(20), -1]:
            await handle.send("items", n)
    monkeypatch.delenv("PERDURE_STORE_FAULTS")
    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
        assert await (await engine.get("collect")).result(timeout=10) == list(range(20))


@FLAVOURS
async def test_a_workflow_sends_to_another_exactly_once_even_when_it_replays(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    @perdure.workflow(registry=registry)
    async def receiver() -> list[Any]:
        items = []
        while (item := await perdure.recv("items")) != "end":
            items.append(item)
        items.append(await perdure.recv("items", timeout=timedelta(hours=1)))  # nothing more: None
        return items

    sender: perdure.Workflow[[str], None]
    if flavour == "async":

        @perdure.workflow(name="sender", registry=registry)
        async def sender_async(target: str) -> None:
            await perdure.send(target, "items", 1)
            await perdure.sleep(DAY)  # unloads: the send above replays, and must not send again
            await perdure.send(target, "items", {"n": 2})
            await perdure.send(target, "items", "end")

        sender = sender_async
    else:

        @perdure.workflow(name="sender", registry=registry)
        def sender_def(target: str) -> None:
            perdure.send(target, "items", 1)
            perdure.sleep(DAY)
            perdure.send(target, "items", {"n": 2})
            perdure.send(target, "items", "end")

        sender = sender_def

    async with perdure.Engine(
        db_url, registry=registry, poll_interval=POLL, clock=perdure.testing.VirtualClock()
    ) as engine:
        inbox = await engine.start(receiver, id="inbox")
        out = await engine.start(sender, "inbox")
        await out.result(timeout=10)
        assert await inbox.result(timeout=10) == [1, {"n": 2}, None]
        sent = [(e.kind, e.name, e.result) for e in await out.history() if e.kind == "send"]

    assert sent == [("send", "items", "inbox")] * 3


async def test_client_sends_to_unknown_or_ended_workflows_or_of_unserializable_values_are_refused(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def done() -> str:
        return "done"

    @perdure.workflow(registry=registry)
    async def listener() -> str:
        got: str = await perdure.recv("t")
        return got

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
        ended = await engine.start(done)
        await ended.result(timeout=10)
        waiting = await engine.start(listener)
        with pytest.raises(perdure.NotFound, match="nobody"):
            await engine.send("nobody", "t", 1)
        with pytest.raises(perdure.InvalidState, match="completed"):
            await ended.send("t", 1)
        with pytest.raises(perdure.InvalidArgument, match="cannot be serialized"):
            await waiting.send("t", object())
        with pytest.raises(perdure.InvalidArgument, match="cannot be serialized"):
            await engine.send(waiting.id, "t", {"when": {1, 2}.__iter__()})
        await waiting.send("t", "the only one")
        assert await waiting.result(timeout=10) == "the only one"


@FLAVOURS
async def test_a_workflows_refused_sends_raise_the_same_errors_when_it_replays(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    @perdure.workflow(registry=registry)
    async def done() -> str:
        return "done"

    ran: list[list[str]] = []

    @perdure.step(registry=registry)
    def note(errors: list[str]) -> None:
        ran.append(errors)

    def attempt(errors: list[str], call: Any) -> Any:
        try:
            return call()
        except perdure.PerdureError as exc:
            errors.append(type(exc).__name__)
            return None

    sender: perdure.Workflow[[str], list[str]]
    if flavour == "async":

        @perdure.workflow(name="sender", registry=registry)
        async def sender_async(ended: str) -> list[str]:
            errors: list[str] = []
            for target, value in [("nobody", 1), (ended, 1), (ended, object())]:
                try:
                    await perdure.send(target, "t", value)
                except perdure.PerdureError as exc:
                    errors.append(type(exc).__name__)
            await note(errors)
            await perdure.sleep(DAY)  # unloads: the errors above are raised again in the replay
            return errors

        sender = sender_async
    else:

        @perdure.workflow(name="sender", registry=registry)
        def sender_def(ended: str) -> list[str]:
            errors: list[str] = []
            for target, value in [("nobody", 1), (ended, 1), (ended, object())]:
                attempt(errors, lambda t=target, v=value: perdure.send(t, "t", v))
            note(errors)
            perdure.sleep(DAY)
            return errors

        sender = sender_def

    async with perdure.Engine(
        db_url, registry=registry, poll_interval=POLL, clock=perdure.testing.VirtualClock()
    ) as engine:
        ended = await engine.start(done)
        await ended.result(timeout=10)
        handle = await engine.start(sender, ended.id)
        assert await handle.result(timeout=10) == ["NotFound", "InvalidState", "InvalidArgument"]
        history = await handle.history()

    assert ran == [["NotFound", "InvalidState", "InvalidArgument"]], "the step after them ran once"
    assert [e.position for e in history] == list(range(len(history))), "no position skipped"
    assert [(e.kind, e.ok) for e in history] == [
        ("send", False),
        ("send", False),
        ("step", True),
        ("sleep", True),
    ]


# --- events ----------------------------------------------------------------------


@FLAVOURS
async def test_an_event_is_none_before_it_is_set_and_its_latest_value_after(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    stages: perdure.Workflow[[], str]
    if flavour == "async":

        @perdure.workflow(name="stages", registry=registry)
        async def stages_async() -> str:
            perdure.set_event("stage", "started")
            try:
                perdure.set_event("bad", object())
            except perdure.InvalidArgument:
                perdure.set_event("refused", True)
            go: str = await perdure.recv("go")
            perdure.set_event("stage", {"done": go})
            return go

        stages = stages_async
    else:

        @perdure.workflow(name="stages", registry=registry)
        def stages_def() -> str:
            perdure.set_event("stage", "started")
            try:
                perdure.set_event("bad", object())
            except perdure.InvalidArgument:
                perdure.set_event("refused", True)
            go = cast(str, perdure.recv("go"))
            perdure.set_event("stage", {"done": go})
            return go

        stages = stages_def

    async with perdure.Engine(db_url, registry=registry, executor=False) as client:
        handle = await client.start(stages, id="stages")
        assert await handle.get_event("stage") is None, "not set before the workflow ran"
        async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
            assert await handle.wait_event("stage", timeout=10) == "started"
            await eventually(handle.status, lambda s: s is perdure.Status.WAITING, what="the wait for go")
            assert await handle.get_event("refused") is True
            assert await handle.get_event("bad") is None
            assert await handle.get_event("never set") is None
            with pytest.raises(perdure.ResultTimeout, match="never set"):
                await handle.wait_event("never set", timeout=0.05)
            await handle.send("go", "now")
            assert await (await engine.get("stages")).result(timeout=10) == "now"
        assert await handle.get_event("stage") == {"done": "now"}, "the latest value replaced the first"
        with pytest.raises(perdure.InvalidState, match="never set"):
            await handle.wait_event("never set", timeout=10)  # it ended without setting it
        history = await handle.history()
    assert [e.position for e in history] == list(range(len(history))), "no position skipped"


# --- cancellation at a wait ------------------------------------------------------

WAITS = ["sleep in memory", "sleep unloaded", "recv", "recv with timeout"]


@FLAVOURS
@pytest.mark.parametrize("wait", WAITS)
async def test_cancelling_a_waiting_workflow_runs_its_finally_step_once_and_result_raises_cancelled(
    db_url: str, registry: perdure.Registry, flavour: str, wait: str
) -> None:
    ran: list[str] = []

    @perdure.step(registry=registry)
    def note(what: str) -> None:
        ran.append(what)

    async def wait_async() -> None:
        if wait == "sleep in memory":
            await perdure.sleep(timedelta(minutes=1))
        elif wait == "sleep unloaded":
            await perdure.sleep(DAY)
        else:
            await perdure.recv("never", timeout=DAY if wait == "recv with timeout" else None)

    def wait_def() -> None:
        if wait == "sleep in memory":
            perdure.sleep(timedelta(minutes=1))
        elif wait == "sleep unloaded":
            perdure.sleep(DAY)
        else:
            perdure.recv("never", timeout=DAY if wait == "recv with timeout" else None)

    job: perdure.Workflow[[], None]
    if flavour == "async":

        @perdure.workflow(name="job", registry=registry)
        async def job_async() -> None:
            try:
                await wait_async()
                await note("woke")
            finally:
                await note("cleanup")

        job = job_async
    else:

        @perdure.workflow(name="job", registry=registry)
        def job_def() -> None:
            try:
                wait_def()
                note("woke")
            finally:
                note("cleanup")

        job = job_def

    # Durable time stands still: nothing but the cancellation can end the wait.
    clock = perdure.testing.VirtualClock(autojump=None)
    async with perdure.Engine(
        db_url, registry=registry, poll_interval=POLL, clock=clock, unload_after=3600
    ) as engine:
        handle = await engine.start(job)
        expected = perdure.Status.RUNNING if wait == "sleep in memory" else perdure.Status.WAITING
        await eventually(
            lambda: asyncio.gather(handle.status(), handle.history()),
            lambda seen: seen[0] is expected and len(seen[1]) == (0 if wait == "recv" else 1),
            what=f"the workflow to wait ({wait}), {expected}",
        )
        await handle.cancel()
        with pytest.raises(perdure.WorkflowCancelled, match=repr(handle.id)):
            await handle.result(timeout=10)
        assert await handle.status() is perdure.Status.CANCELLED
        history = await handle.history()

    assert ran == ["cleanup"]
    assert [(e.kind, e.name) for e in history if e.kind == "step"] == [("step", note.name)]


# --- child workflows -------------------------------------------------------------


@FLAVOURS
async def test_a_parent_gets_the_results_of_its_children(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    @perdure.workflow(registry=registry)
    async def square(n: int) -> int:
        return n * n

    parent: perdure.Workflow[[list[int]], list[Any]]
    if flavour == "async":

        @perdure.workflow(name="parent", registry=registry)
        async def parent_async(ns: list[int]) -> list[Any]:
            children = [await perdure.start_child(square, n) for n in ns]
            named = await perdure.start_child(square, 12, id="square-12")
            values = [await c.result() for c in [*children, named]]
            return [[c.id for c in [*children, named]], values]

        parent = parent_async
    else:

        @perdure.workflow(name="parent", registry=registry)
        def parent_def(ns: list[int]) -> list[Any]:
            children = [cast(perdure.ChildHandle[int], perdure.start_child(square, n)) for n in ns]
            named = cast(perdure.ChildHandle[int], perdure.start_child(square, 12, id="square-12"))
            values = [c.result() for c in [*children, named]]
            return [[c.id for c in [*children, named]], values]

        parent = parent_def

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
        handle = await engine.start(parent, [2, 3, 4], id="p")
        ids, values = await handle.result(timeout=10)
        listed = {info.id: info.status for info in (await engine.list(name=square.name)).items}
        outside = [await (await engine.get(cid)).result(timeout=10) for cid in ids]

    assert values == [4, 9, 16, 144]
    assert outside == values, "each child is an instance of its own, with its own result"
    assert ids[-1] == "square-12"
    assert len(set(ids)) == 4
    assert all(cid.startswith("p") for cid in ids[:3]), f"default ids derive from the parent's: {ids}"
    assert listed == dict.fromkeys(ids, perdure.Status.COMPLETED)


async def test_a_failing_child_raises_workflow_failed_in_the_parent_with_its_type_and_message(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def picky(sku: str) -> None:
        raise ValueError(f"no stock for {sku}")

    @perdure.workflow(registry=registry)
    async def parent() -> list[str]:
        child = await perdure.start_child(picky, "sku-7")
        try:
            await child.result()
        except perdure.WorkflowFailed as exc:
            seen = [exc.workflow_id == child.id, exc.error_type, exc.message]
        await perdure.sleep(DAY)  # unloads: the replay raises the recorded failure again
        return [str(s) for s in seen]

    async with perdure.Engine(
        db_url, registry=registry, poll_interval=POLL, clock=perdure.testing.VirtualClock()
    ) as engine:
        handle = await engine.start(parent)
        assert await handle.result(timeout=10) == ["True", "ValueError", "no stock for sku-7"]
        (child,) = (await engine.list(name=picky.name)).items
    assert child.status is perdure.Status.FAILED


@FLAVOURS
async def test_a_default_child_id_is_derived_from_the_parent_and_the_same_on_replay(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    @perdure.workflow(registry=registry)
    async def square(n: int) -> int:
        return n * n

    parent: perdure.Workflow[[], list[Any]]
    if flavour == "async":

        @perdure.workflow(name="parent", registry=registry)
        async def parent_async() -> list[Any]:
            first = await perdure.start_child(square, 3)
            perdure.set_event("first child", first.id)
            await perdure.sleep(DAY)  # unloads: start_child replays and must name the same child
            second = await perdure.start_child(square, 4)
            return [first.id, second.id, await first.result(), await second.result()]

        parent = parent_async
    else:

        @perdure.workflow(name="parent", registry=registry)
        def parent_def() -> list[Any]:
            first = cast(perdure.ChildHandle[int], perdure.start_child(square, 3))
            perdure.set_event("first child", first.id)
            perdure.sleep(DAY)
            second = cast(perdure.ChildHandle[int], perdure.start_child(square, 4))
            return [first.id, second.id, first.result(), second.result()]

        parent = parent_def

    async with perdure.Engine(
        db_url, registry=registry, poll_interval=POLL, clock=perdure.testing.VirtualClock()
    ) as engine:
        one = await engine.start(parent, id="one")
        first, second, nine, sixteen = await one.result(timeout=10)
        assert await one.get_event("first child") == first, "the replay named the child of the first run"
        other = await engine.start(parent, id="other")
        other_ids = (await other.result(timeout=10))[:2]
        children = sorted(info.id for info in (await engine.list(name=square.name)).items)

    assert (nine, sixteen) == (9, 16)
    assert first != second
    assert set(other_ids).isdisjoint({first, second}), "another parent's children get other ids"
    assert children == sorted([first, second, *other_ids]), "each child exists exactly once"


async def test_parent_close_policies_act_on_children_still_running_when_the_parent_completes(
    db_url: str, registry: perdure.Registry
) -> None:
    cleaned: list[str] = []

    @perdure.step(registry=registry)
    def clean_up(policy: str) -> None:
        cleaned.append(policy)

    @perdure.workflow(registry=registry)
    async def lingering(policy: str) -> str:
        try:
            got: str = await perdure.recv("release")
            return got
        finally:
            await clean_up(policy)

    @perdure.workflow(registry=registry)
    async def parent() -> list[str]:
        ids = []
        for policy in ("terminate", "request_cancel", "abandon"):
            child = await perdure.start_child(lingering, policy, id=f"child-{policy}", parent_close=policy)
            ids.append(child.id)
        await perdure.recv("finish")
        return ids

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
        handle = await engine.start(parent)
        children = ["child-terminate", "child-request_cancel", "child-abandon"]

        async def statuses() -> list[perdure.Status | None]:
            return [await status_of(engine, cid) for cid in [handle.id, *children]]

        await eventually(
            statuses, lambda s: set(s) == {perdure.Status.WAITING}, what="the parent and its children to wait"
        )
        await handle.send("finish", None)
        assert await handle.result(timeout=10) == children

        terminated, requested, free = [await engine.get(cid) for cid in children]
        with pytest.raises(perdure.WorkflowCancelled):
            await terminated.result(timeout=10)
        with pytest.raises(perdure.WorkflowCancelled):
            await requested.result(timeout=10)
        assert cleaned == ["request_cancel"], "terminate cancels at once, request_cancel lets it clean up"
        assert await free.status() is perdure.Status.WAITING, "an abandoned child runs on"
        await free.send("release", "free")
        assert await free.result(timeout=10) == "free"

    assert cleaned == ["request_cancel", "abandon"]


def never_ending(registry: perdure.Registry) -> perdure.Workflow[[], None]:
    """A child that waits for a message nobody sends: it ends only when it is closed."""

    @perdure.workflow(registry=registry)
    async def never_ending() -> None:
        await perdure.recv("never")

    return never_ending


async def closed(engine: perdure.Engine, child_id: str) -> None:
    """Child ``child_id`` ends cancelled: its parent's end closed it."""
    kid = await engine.get(child_id)
    with pytest.raises(perdure.WorkflowCancelled):
        await kid.result(timeout=10)


async def test_a_parent_that_times_out_while_unloaded_closes_its_children(
    db_url: str, registry: perdure.Registry
) -> None:
    # The deadline passes while the parent sleeps unloaded: loaded again, it fails at once,
    # before its code replays the child's start; the child is closed all the same.
    forever = never_ending(registry)

    @perdure.workflow(registry=registry)
    async def parent() -> None:
        await perdure.start_child(forever, id="kid-of-late")
        await perdure.sleep(3600)

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL, unload_after=0.05) as engine:
        handle = await engine.start(parent, execution_timeout=1.0)
        with pytest.raises(perdure.WorkflowFailed) as failed:
            await handle.result(timeout=10)
        assert failed.value.error_type == "perdure.WorkflowTimedOut"
        await closed(engine, "kid-of-late")


async def test_a_parent_that_continued_as_new_closes_the_children_of_its_earlier_runs(
    db_url: str, registry: perdure.Registry
) -> None:
    forever = never_ending(registry)

    @perdure.workflow(registry=registry)
    async def parent(run: int) -> int:
        if run == 0:
            await perdure.start_child(forever, id="kid-of-run-0")
            perdure.continue_as_new(1)
        return run

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
        handle = await engine.start(parent, 0)
        assert await handle.result(timeout=10) == 1
        await closed(engine, "kid-of-run-0")


@FLAVOURS
async def test_cancelling_a_parent_cancels_its_children(
    db_url: str, registry: perdure.Registry, flavour: str
) -> None:
    cleaned: list[str] = []

    @perdure.step(registry=registry)
    def clean_up(who: str) -> None:
        cleaned.append(who)

    @perdure.workflow(registry=registry)
    async def forever(who: str) -> None:
        try:
            await perdure.recv("never")
        finally:
            await clean_up(who)

    parent: perdure.Workflow[[], None]
    if flavour == "async":

        @perdure.workflow(name="parent", registry=registry)
        async def parent_async() -> None:
            try:
                first = await perdure.start_child(forever, "terminated", id="kid-1")
                await perdure.start_child(forever, "requested", id="kid-2", parent_close="request_cancel")
                await first.result()
            finally:
                await clean_up("parent")

        parent = parent_async
    else:

        @perdure.workflow(name="parent", registry=registry)
        def parent_def() -> None:
            try:
                first = cast(
                    perdure.ChildHandle[None], perdure.start_child(forever, "terminated", id="kid-1")
                )
                perdure.start_child(forever, "requested", id="kid-2", parent_close="request_cancel")
                first.result()
            finally:
                clean_up("parent")

        parent = parent_def

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
        handle = await engine.start(parent)

        async def statuses() -> list[perdure.Status | None]:
            return [await status_of(engine, i) for i in (handle.id, "kid-1", "kid-2")]

        await eventually(statuses, lambda s: set(s) == {perdure.Status.WAITING}, what="all three to wait")
        await handle.cancel()
        with pytest.raises(perdure.WorkflowCancelled):
            await handle.result(timeout=10)
        for kid in ("kid-1", "kid-2"):
            with pytest.raises(perdure.WorkflowCancelled):
                await (await engine.get(kid)).result(timeout=10)

    assert sorted(cleaned) == ["parent", "requested"], "the parent and the request_cancel child cleaned up"


# --- continue as new -------------------------------------------------------------


async def test_continuing_as_new_a_thousand_times_keeps_a_bounded_journal_and_lists_the_runs(
    db_url: str, registry: perdure.Registry, store_faults: str
) -> None:
    """1,000 runs on a clean store; 100 with store faults, whose retried commits slow each run."""
    runs_total = 1000 if store_faults == "clean" else 100
    last = runs_total - 1

    @perdure.step(registry=registry)
    async def add(a: int, b: int) -> int:
        return a + b

    @perdure.workflow(registry=registry)
    async def countdown(n: int, total: int) -> int:
        total = await add(total, n)
        perdure.set_event("n", n)
        if n > 0:
            perdure.continue_as_new(n - 1, total)
        return total

    async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
        handle = await engine.start(countdown, last, 0, id="countdown")
        await eventually(
            lambda: handle.get_event("n"), lambda n: n is not None and n < last - 10, what="ten runs"
        )
        again = await engine.start(countdown, last, 0, id="countdown")  # the original arguments
        with pytest.raises(perdure.Conflict, match="other arguments"):
            await engine.start(countdown, 5, 0, id="countdown")
        assert await again.result(timeout=60) == sum(range(runs_total))
        runs = await handle.runs()
        info = await handle.info()
        history = await handle.history()
        total_instances = len((await engine.list()).items)

    assert again.id == handle.id
    assert total_instances == 1, "idempotent start returned the same instance, started nothing new"
    assert info.run == last
    assert len(runs) == last, f"{len(runs)} earlier runs listed"
    assert [r.run for r in runs] == list(range(last))
    assert runs[0].input == {"n": last, "total": 0}
    assert runs[-1].input == {"n": 1, "total": sum(range(2, runs_total))}
    assert {r.steps for r in runs} == {2}, "every run's journal held its step and its event, no more"
    assert [(e.position, e.kind) for e in history] == [(0, "step"), (1, "set_event")], "bounded"


async def test_a_def_workflow_continues_as_new_and_unconsumed_messages_carry_over(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    def drain(seen: list[str]) -> list[str]:
        seen = [*seen, cast(str, perdure.recv("jobs", type=str))]
        if len(seen) < 3:
            perdure.continue_as_new(seen)
        return seen

    async with perdure.Engine(db_url, registry=registry, executor=False) as client:
        handle = await client.start(drain, [], id="drain")
        for job in ("j1", "j2", "j3"):
            await handle.send("jobs", job)  # all there before run 0 even starts
        async with perdure.Engine(db_url, registry=registry, poll_interval=POLL) as engine:
            assert await (await engine.get("drain")).result(timeout=10) == ["j1", "j2", "j3"]
        runs = await handle.runs()
        info = await handle.info()

    assert info.run == 2
    assert [r.input for r in runs] == [{"seen": []}, {"seen": ["j1"]}]
