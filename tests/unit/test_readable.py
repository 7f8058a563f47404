"""``Readable``: a socket the loop watches from one wait to the next, never spinning on it."""

from __future__ import annotations

import asyncio
import socket

from perdure._store.prepared import Readable


async def test_waits_end_when_data_comes_and_the_socket_stays_watched() -> None:
    ours, theirs = socket.socketpair()
    watch = Readable(ours.fileno())

    async def read() -> bytes:
        await watch.wait()
        return ours.recv(10)  # at once, as a statement's wait does

    try:
        for n in range(3):
            reading = asyncio.ensure_future(read())
            await asyncio.sleep(0)
            assert not reading.done(), "nothing to read yet"
            theirs.send(b"x")
            assert await asyncio.wait_for(reading, 5) == b"x"
            for _ in range(3):  # the loop goes round, reporting what was read already once
                await asyncio.sleep(0)
            assert watch.watching, f"still watched after wait {n}"
    finally:
        watch.close()
        ours.close()
        theirs.close()


async def test_a_readiness_nobody_waits_for_stops_the_watch_and_the_next_wait_watches_again() -> None:
    ours, theirs = socket.socketpair()
    watch = Readable(ours.fileno())
    try:
        theirs.send(b"x")
        await asyncio.wait_for(watch.wait(), 5)
        # Unread, the byte keeps the socket readable: the loop must not call back forever.
        for _ in range(5):
            await asyncio.sleep(0)
        assert not watch.watching
        await watch.wait()  # (awaited here: whoever waits reads at once)
        assert ours.recv(10) == b"x"
        assert watch.watching
    finally:
        watch.close()
        ours.close()
        theirs.close()
