"""``Readable``: a socket the loop watches from one wait to the next, never spinning on it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator

import pytest

from perdure._store.prepared import Readable

Pair = tuple[socket.socket, socket.socket, Readable]
"""Our end of a socket pair, theirs, and a watch of ours."""


@pytest.fixture
def pair() -> Iterator[Pair]:
    ours, theirs = socket.socketpair()
    watch = Readable(ours.fileno())
    try:
        yield ours, theirs, watch
    finally:
        watch.close()
        ours.close()
        theirs.close()


async def test_waits_end_when_data_comes_and_the_socket_stays_watched(pair: Pair) -> None:
    ours, theirs, watch = pair

    async def read() -> bytes:
        await watch.wait()
        return ours.recv(10)  # at once, as a statement's wait does

    for n in range(3):
        reading = asyncio.ensure_future(read())
        await asyncio.sleep(0)
        assert not reading.done(), "nothing to read yet"
        theirs.send(b"x")
        assert await asyncio.wait_for(reading, 5) == b"x"
        for _ in range(3):  # the loop goes round, reporting what was read already once
            await asyncio.sleep(0)
        assert watch.watching, f"still watched after wait {n}"


async def test_a_readiness_nobody_waits_for_stops_the_watch_and_the_next_wait_watches_again(
    pair: Pair,
) -> None:
    ours, theirs, watch = pair
    theirs.send(b"x")
    await asyncio.wait_for(watch.wait(), 5)
    # Unread, the byte keeps the socket readable: the loop must not call back forever.
    for _ in range(5):
        await asyncio.sleep(0)
    assert not watch.watching
    await watch.wait()  # (awaited here: whoever waits reads at once)
    assert ours.recv(10) == b"x"
    assert watch.watching


async def test_a_wait_with_done_wakes_its_task_once_when_the_whole_reply_is_in(pair: Pair) -> None:
    # A reply in two parts (a statement's rows, then after the WAL flush the end of it):
    # each readiness is read in the loop's callback; the task wakes once, at the end.
    ours, theirs, watch = pair
    ours.setblocking(False)
    got = bytearray()
    calls = 0

    def done() -> bool:
        nonlocal calls
        calls += 1
        got.extend(ours.recv(100))
        return got.endswith(b"!")

    waiting = asyncio.ensure_future(watch.wait(done))
    await asyncio.sleep(0)
    theirs.send(b"rows;")
    for _ in range(5):
        await asyncio.sleep(0)
    assert calls == 1, "the first part was read in the loop's callback"
    assert not waiting.done(), "the task is not woken for a part"
    theirs.send(b"end!")
    await asyncio.wait_for(waiting, 5)
    assert (bytes(got), calls) == (b"rows;end!", 2)
    assert watch.watching


async def test_what_done_raises_the_wait_raises(pair: Pair) -> None:
    _, theirs, watch = pair

    def done() -> bool:
        raise ConnectionResetError("the server went away")

    theirs.send(b"x")
    with pytest.raises(ConnectionResetError, match="went away"):
        await asyncio.wait_for(watch.wait(done), 5)
