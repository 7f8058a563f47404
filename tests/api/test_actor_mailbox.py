"""An actor's mailbox: messages sent to an actor (type and key) by clients and by durable
code, taken by ``perdure.recv`` in its calls, in send order, exactly once, across restarts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import perdure
import perdure.testing

from .waiting import eventually

reg = perdure.Registry()


@perdure.actor(registry=reg)
class Inbox:
    def __init__(self, key: str) -> None:
        self.got: list[Any] = []

    async def take(self, topic: str, n: int) -> list[Any]:
        for _ in range(n):
            self.got.append(await perdure.recv(topic))
        return self.got

    def take_blocking(self, topic: str) -> Any:
        value = perdure.recv(topic)
        self.got.append(value)
        return value

    async def take_or_none(self, timeout: float) -> Any:
        value = await perdure.recv("maybe", timeout=timedelta(seconds=timeout))
        self.got.append(value)
        return value

    async def take_within(self, timeout: float) -> str:
        try:
            value = await perdure.wait_for(lambda: perdure.recv("late"), timeout)
        except perdure.WaitTimedOut:
            return "timed out"
        return f"got {value}"

    def take_within_blocking(self, timeout: float) -> str:
        try:
            value = perdure.wait_for(lambda: perdure.recv("late"), timeout)
        except perdure.WaitTimedOut:
            return "timed out"
        return f"got {value}"

    async def take_when(self) -> datetime:
        when: datetime = await perdure.recv("when", type=datetime)
        return when

    async def take_then_fail(self, topic: str) -> None:
        self.got.append(await perdure.recv(topic))
        raise ValueError("refused")

    def note(self, text: str) -> list[Any]:
        self.got.append(text)
        return list(self.got)

    async def forward(self, to: str, topic: str, value: str) -> None:
        await perdure.send_actor(Inbox, to, topic, value)


@perdure.actor(registry=reg, durable=False)
class Echo:
    def __init__(self, key: str) -> None:
        self.key = key

    async def listen(self) -> Any:
        return await perdure.recv("t")


@perdure.workflow(registry=reg)
async def notify(key: str, topic: str, values: list[str]) -> int:
    for value in values:
        await perdure.send_actor(Inbox, key, topic, value)
    return len(values)


@perdure.workflow(registry=reg)
def notify_blocking(key: str, topic: str, value: str) -> None:
    perdure.send_actor("Inbox", key, topic, value)


@perdure.workflow(registry=reg)
async def send_to_an_actor_id(key: str) -> None:
    await perdure.send(f"Inbox/{key}", "t", 1)  # an actor's id: send_actor is the way


@perdure.workflow(registry=reg)
async def ask_echo() -> Any:
    return await perdure.actor_ref(Echo, "e").listen()


def engine(db_url: str, **options: Any) -> perdure.Engine:
    return perdure.Engine(db_url, registry=reg, poll_interval=0.02, **options)


async def call_status(e: perdure.Engine, key: str, call_id: str) -> perdure.Status | None:
    found = [o.status for o in (await e.actor_oplog(Inbox, key)).items if o.id == call_id]
    return found[0] if found else None


async def waiting(e: perdure.Engine, key: str, call_id: str) -> None:
    await eventually(
        lambda: call_status(e, key, call_id),
        lambda s: s is perdure.Status.WAITING,
        what=f"call {call_id} waiting for a message",
    )


async def test_a_waiting_call_gets_messages_from_a_client_and_a_workflow_in_send_order(db_url: str) -> None:
    async with engine(db_url) as e:
        call = await e.enqueue(Inbox, "a", "take", "t", 4)
        await waiting(e, "a", call)
        await e.send_actor(Inbox, "a", "t", "from client")
        handle = await e.start(notify, "a", "t", ["wf 1", "wf 2"])
        assert await handle.result(timeout=30) == 2
        await e.send_actor("Inbox", "a", "t", {"last": True})
        assert await e.invocation_result(call, timeout=30) == ["from client", "wf 1", "wf 2", {"last": True}]
        assert (await e.actor_state(Inbox, "a"))["got"] == ["from client", "wf 1", "wf 2", {"last": True}]
        # The workflow's sends are in its journal, each at its own position, naming the actor.
        sends = [h for h in await handle.history() if h.kind == "send"]
        assert [(h.name, h.result) for h in sends] == [("t", "Inbox/a"), ("t", "Inbox/a")]
        assert (await e.actor_info(Inbox, "a")).messages == 0


async def test_a_message_sent_before_any_call_waits_in_the_mailbox(db_url: str) -> None:
    async with engine(db_url) as e:
        with pytest.raises(perdure.NotFound):
            await e.actor_info(Inbox, "early")
        await e.send_actor(Inbox, "early", "t", "first")
        await e.send_actor(Inbox, "early", "t", "second")
        await e.send_actor(Inbox, "early", "other", "elsewhere")
        info = await e.actor_info(Inbox, "early")  # the first message made the actor
        assert (info.status, info.invocations, info.messages) == ("idle", 0, 3)
        assert [(a.type, a.key) for a in (await e.list_actors()).items] == [("Inbox", "early")]
        assert await e.actor(Inbox, "early").take("t", 1) == ["first"]
        assert (await e.actor_info(Inbox, "early")).messages == 2
        # A later call takes the next one: the mailbox belongs to the actor, not to a call.
        assert await e.actor(Inbox, "early").take("t", 1) == ["first", "second"]
        assert await e.actor(Inbox, "early").take_blocking("other") == "elsewhere"
        assert (await e.actor_info(Inbox, "early")).messages == 0


async def test_a_def_method_and_a_def_workflow_use_the_mailbox_too(db_url: str) -> None:
    async with engine(db_url) as e:
        call = await e.enqueue(Inbox, "d", "take_blocking", "t")
        await waiting(e, "d", call)
        await (await e.start(notify_blocking, "d", "t", "blocking")).result(timeout=30)
        assert await e.invocation_result(call, timeout=30) == "blocking"
        when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
        await e.send_actor(Inbox, "d", "when", when)
        assert await e.actor(Inbox, "d").take_when() == when  # typed by recv's type


async def test_an_actor_sends_to_another_actors_mailbox(db_url: str) -> None:
    async with engine(db_url) as e:
        await e.actor(Inbox, "from").forward("to", "t", "hello")
        await e.actor(Inbox, "from").forward("to", "t", "again")
        assert await e.actor(Inbox, "to").take("t", 2) == ["hello", "again"]


async def test_recv_with_a_timeout_returns_none_and_wait_for_gives_up(db_url: str) -> None:
    clock = perdure.testing.VirtualClock()
    async with engine(db_url, clock=clock) as e:
        assert await e.actor(Inbox, "t").take_or_none(3600) is None
        assert await e.actor(Inbox, "t").take_within(3600) == "timed out"
        assert await e.actor(Inbox, "t").take_within_blocking(3600) == "timed out"
        await e.send_actor(Inbox, "t", "maybe", "here")
        await e.send_actor(Inbox, "t", "late", "now")
        assert await e.actor(Inbox, "t").take_or_none(3600) == "here"
        assert await e.actor(Inbox, "t").take_within(3600) == "got now"
        assert (await e.actor_state(Inbox, "t"))["got"] == [None, "here"]


async def test_calls_queue_behind_a_call_waiting_for_a_message(db_url: str) -> None:
    async with engine(db_url) as e:
        waiter = await e.enqueue(Inbox, "q", "take", "t", 1)
        await waiting(e, "q", waiter)
        behind = [await e.enqueue(Inbox, "q", "note", f"n{i}") for i in range(3)]
        for call in behind:
            assert await call_status(e, "q", call) is perdure.Status.QUEUED
        assert (await e.actor_info(Inbox, "q")).status == "busy"
        await e.send_actor(Inbox, "q", "t", "m")
        assert await e.invocation_result(waiter, timeout=30) == ["m"]
        results = [await e.invocation_result(call, timeout=30) for call in behind]
        assert results[-1] == ["m", "n0", "n1", "n2"]  # they ran after it, in order


async def test_a_call_waiting_across_a_restart_finishes_once(db_url: str) -> None:
    async with engine(db_url) as e:
        call = await e.enqueue(Inbox, "r", "take", "t", 2)
        await e.send_actor(Inbox, "r", "t", "before")
        await eventually(
            lambda: e.actor_info(Inbox, "r"), lambda i: i.messages == 0, what="the first message taken"
        )
        await waiting(e, "r", call)
    async with engine(db_url, executor=False) as client:
        await client.send_actor(Inbox, "r", "t", "while down", idempotency_key="k1")
        assert (await client.actor_info(Inbox, "r")).messages == 1
    async with engine(db_url) as e:
        assert await e.invocation_result(call, timeout=30) == ["before", "while down"]
        info = await e.actor_info(Inbox, "r")
        assert (info.invocations, info.messages) == (1, 0)
        assert await e.actor_state(Inbox, "r") == {"got": ["before", "while down"]}
        kinds = [o.status for o in (await e.actor_oplog(Inbox, "r")).items]
        assert kinds == [perdure.Status.COMPLETED]


async def test_an_idempotency_key_delivers_a_message_once(db_url: str) -> None:
    async with engine(db_url) as e:
        for _ in range(3):
            await e.send_actor(Inbox, "i", "t", "once", idempotency_key="req-1")
        await e.send_actor(Inbox, "i", "t", "twice", idempotency_key="req-2")
        assert (await e.actor_info(Inbox, "i")).messages == 2
        assert await e.actor(Inbox, "i").take("t", 2) == ["once", "twice"]
        # Consumed, the key still says it was delivered: a late retry delivers nothing.
        await e.send_actor(Inbox, "i", "t", "once", idempotency_key="req-1")
        assert (await e.actor_info(Inbox, "i")).messages == 0


async def test_deleting_an_actor_deletes_its_mailbox(db_url: str) -> None:
    async with engine(db_url) as e:
        await e.send_actor(Inbox, "del", "t", "stale")
        await e.delete_actor(Inbox, "del")
        with pytest.raises(perdure.NotFound):
            await e.actor_info(Inbox, "del")
        await e.send_actor(Inbox, "del", "t", "fresh")
        assert await e.actor(Inbox, "del").take("t", 1) == ["fresh"]


async def test_many_senders_at_once_lose_nothing(db_url: str) -> None:
    async with engine(db_url) as e:
        await asyncio.gather(*(e.send_actor(Inbox, "many", "t", i) for i in range(20)))
        handles = [await e.start(notify, "many", "t", [f"w{i}"]) for i in range(5)]
        for handle in handles:
            await handle.result(timeout=30)
        got = await e.actor(Inbox, "many").take("t", 25)
        assert sorted(v for v in got if isinstance(v, int)) == list(range(20))
        assert sorted(v for v in got if isinstance(v, str)) == [f"w{i}" for i in range(5)]
        assert (await e.actor_info(Inbox, "many")).messages == 0


async def test_bad_messages_are_refused_and_change_nothing(db_url: str) -> None:
    async with engine(db_url) as e:
        with pytest.raises(perdure.RegistrationError):
            await e.send_actor("Nope", "k", "t", 1)
        with pytest.raises(perdure.InvalidArgument, match="cannot be serialized"):
            await e.send_actor(Inbox, "k", "t", object())
        with pytest.raises(perdure.InvalidArgument, match="'/'"):
            await e.send_actor(Inbox, "a/b", "t", 1)
        with pytest.raises(perdure.InvalidArgument, match="topic"):
            await e.send_actor(Inbox, "k", "", 1)
        with pytest.raises(perdure.InvalidArgument, match="idempotency key"):
            await e.send_actor(Inbox, "k", "t", 1, idempotency_key="")
        with pytest.raises(perdure.InvalidArgument, match="ephemeral"):
            await e.send_actor(Echo, "e", "t", 1)
        with pytest.raises(perdure.InvalidArgument, match=r"to send to the mailbox .* engine\.send_actor\("):
            await e.send("Inbox/k", "t", 1)
        wrong = await e.start(send_to_an_actor_id, "k")
        with pytest.raises(perdure.WorkflowFailed, match=r"use perdure\.send_actor\("):
            await wrong.result(timeout=30)
        assert (await e.list_actors()).items == []  # none of it made an actor
        with pytest.raises(perdure.OutsideWorkflow):
            perdure.send_actor(Inbox, "k", "t", 1)


async def test_an_ephemeral_actor_cannot_recv_and_says_why(db_url: str) -> None:
    async with engine(db_url) as e:
        with pytest.raises(perdure.ActorCallFailed, match="ephemeral actor 'Echo/e'"):
            await e.actor(Echo, "e").listen()
        handle = await e.start(ask_echo)
        with pytest.raises(perdure.WorkflowFailed, match="ephemeral actor 'Echo/e'"):
            await handle.result(timeout=30)


def test_the_sync_engine_sends_to_a_mailbox(db_url: str) -> None:
    with perdure.Engine(db_url, registry=reg, poll_interval=0.02) as e:
        e.send_actor(Inbox, "s", "t", "sync", idempotency_key="once")
        e.send_actor(Inbox, "s", "t", "sync", idempotency_key="once")
        assert e.actor_info(Inbox, "s").messages == 1
        assert e.actor(Inbox, "s").take("t", 1) == ["sync"]


async def test_a_message_from_another_engine_wakes_the_waiting_call(db_url: str) -> None:
    async with engine(db_url) as e, engine(db_url, executor=False) as client:
        call = await e.enqueue(Inbox, "x", "take", "t", 1)
        await waiting(e, "x", call)
        await client.send_actor(Inbox, "x", "t", "across")
        assert await e.invocation_result(call, timeout=30) == ["across"]


async def test_a_failed_call_keeps_no_state_but_its_message_stays_consumed(db_url: str) -> None:
    async with engine(db_url) as e:
        await e.send_actor(Inbox, "f", "t", "first")
        await e.send_actor(Inbox, "f", "t", "second")
        with pytest.raises(perdure.ActorCallFailed, match="refused"):
            await e.actor(Inbox, "f").take_then_fail("t")
        assert (await e.actor_info(Inbox, "f")).messages == 1
        assert await e.actor(Inbox, "f").take("t", 1) == ["second"]  # not ["first", "second"]
