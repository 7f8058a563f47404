"""One server-side prepared statement run straight on libpq: the PostgreSQL hot path's call.

psycopg's async ``execute`` costs about twice the client CPU of its sync one per
statement (cursor and query generators, parameter conversion, a timer and a
reader registration per wait), and a sequential step pays it on every record.
``Prepared`` does only what one statement in autocommit needs: dump the
parameters with psycopg's own dumpers (text, bytes as binary), send Bind and
Execute for a statement prepared once per connection, wait for the socket on
the event loop, and parse the few result columns the caller reads. Errors are psycopg's own
exception classes (``error_from_result``), so the store maps them as any other.

The connection must be idle, in autocommit and the caller's alone (the store's
commit connection is). A ``Readable`` kept for it lets the loop watch its socket
from one statement to the next instead of registering and removing a reader at
every wait.
"""

from __future__ import annotations

import asyncio
import functools
import re
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import abc, errors, pq
from psycopg.adapt import PyFormat, Transformer

_PLACEHOLDER = re.compile(r"%s")
_BINARY, _TEXT = PyFormat.BINARY, PyFormat.TEXT
Column = Callable[[bytes], Any]
"""How one result column's text becomes its Python value (``int``, ``bytes.decode``...)."""


class Prepared:
    """``query`` (positional ``%s`` placeholders, each with an explicit cast) as a named
    prepared statement, run with ``execute`` on any connection of one store; ``columns``
    parse its result's columns, in order (a NULL stays ``None``)."""

    def __init__(self, name: str, query: str, columns: Sequence[Column]) -> None:
        self.name = f"perdure_{name}".encode()
        self.columns = tuple(columns)
        count = iter(range(1, 1 + query.count("%s")))
        self.text = _PLACEHOLDER.sub(lambda _: f"${next(count)}", query).encode()
        self._dumping: tuple[weakref.ref[psycopg.AsyncConnection[Any]], abc.Transformer] | None = None
        """The last connection's Transformer, kept: a new one looks up and makes a dumper
        for each parameter type again (psycopg's Python code) at every statement."""

    def _transformer(self, conn: psycopg.AsyncConnection[Any]) -> abc.Transformer:
        kept = self._dumping
        if kept is not None and kept[0]() is conn:
            return kept[1]
        tx = Transformer(conn)
        self._dumping = (weakref.ref(conn), tx)
        return tx

    async def execute(
        self, conn: psycopg.AsyncConnection[Any], params: Sequence[Any], readable: Readable | None = None
    ) -> list[tuple[Any, ...]]:
        """Run the statement with ``params``; its rows. Prepares it first on a connection
        that does not have it (new, or whose statements psycopg deallocated). ``readable``:
        the connection's socket watch, if it has one."""
        tx = self._transformer(conn)
        # bytea goes as binary (no escaping); everything else as text, which the casts in the
        # query read whatever Python type it came from.
        values = tx.dump_sequence(params, [_BINARY if type(p) is bytes else _TEXT for p in params])
        formats = tx.formats

        def send(pg: pq.abc.PGconn) -> None:
            pg.send_query_prepared(self.name, values, param_formats=formats)

        try:
            res = await _result(conn, send, readable)
        except errors.InvalidSqlStatementName:
            # Autocommit: the failed Bind changed nothing, so preparing and running again is safe.
            await _result(conn, lambda pg: pg.send_prepare(self.name, self.text), readable)
            res = await _result(conn, send, readable)
        return [self._row(res, r) for r in range(res.ntuples)]

    def _row(self, res: pq.abc.PGresult, r: int) -> tuple[Any, ...]:
        return tuple(
            None if (v := res.get_value(r, c)) is None else parse(v) for c, parse in enumerate(self.columns)
        )


async def _result(
    conn: psycopg.AsyncConnection[Any], send: Callable[[pq.abc.PGconn], None], readable: Readable | None
) -> pq.abc.PGresult:
    """Send one command (``send(pgconn)``) and wait for its one result; a failed command
    raises psycopg's exception for its SQLSTATE, a lost connection ``OperationalError``."""
    pg = conn.pgconn
    send(pg)
    fd = pg.socket
    while pg.flush():
        await _ready(fd, writing=True)
    results: list[pq.abc.PGresult] = []
    while True:
        # Read only once the socket says there is something: no read that finds nothing.
        while pg.is_busy():
            if readable is None:
                await _ready(fd, writing=False)
                pg.consume_input()
            else:
                await readable.wait(functools.partial(_read, pg))
        res = pg.get_result()
        if res is None:
            return _only(results, conn.info.encoding)
        results.append(res)


def _read(pg: pq.abc.PGconn) -> bool:
    """Read what came on ``pg``'s socket; True once its result is all in."""
    pg.consume_input()
    return not pg.is_busy()


def _only(results: list[pq.abc.PGresult], encoding: str) -> pq.abc.PGresult:
    for res in results:
        if res.status == pq.ExecStatus.FATAL_ERROR:
            raise errors.error_from_result(res, encoding=encoding)
    if len(results) != 1:
        raise errors.InternalError(f"expected one result, got {len(results)}")
    return results[0]


async def _ready(fd: int, *, writing: bool) -> None:
    """Wait until ``fd`` is readable (or writable)."""
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    if writing:
        loop.add_writer(fd, wake)
    else:
        loop.add_reader(fd, wake)
    try:
        await fut
    finally:
        if writing:
            loop.remove_writer(fd)
        else:
            loop.remove_reader(fd)


class Readable:
    """Waits until one connection's socket is readable, the loop watching it from one wait
    to the next: its selector is told once, not twice per statement (two system calls and
    their bookkeeping, a good part of a step's client CPU).

    A readiness that nobody waits for stops the watch at its second time in a row (the
    first is the one the last wait already took, reported again before its reader read),
    so a connection that the server closed or wrote to between statements never makes an
    idle loop spin; the next wait watches again. ``close`` it before anything else waits
    on the connection (psycopg takes the socket's one reader slot, then frees it) and
    before the connection is closed or handed on, synchronously after an error: libpq
    closes a lost connection's socket, and its number may be reused at the next await.
    """

    __slots__ = ("_done", "_fut", "_idle", "_loop", "fd")

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._loop: asyncio.AbstractEventLoop | None = None
        self._fut: asyncio.Future[None] | None = None
        self._done: Callable[[], bool] | None = None
        self._idle = 0

    async def wait(self, done: Callable[[], bool] | None = None) -> None:
        """Until the socket is readable; with ``done``, until ``done()`` says the wait is
        over. It is called in the loop's callback at each readiness, reads what came, and
        the waiting task is woken once, not once per part of a reply (a statement's often
        comes in two: its rows, then, after the commit's WAL flush, the end of the query).
        What it raises, the wait raises."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
            loop.add_reader(self.fd, self._wake)
        self._idle = 0
        self._done = done
        fut = self._fut = loop.create_future()
        try:
            await fut
        finally:
            self._fut = self._done = None

    def _wake(self) -> None:
        fut = self._fut
        if fut is not None:
            if not fut.done():
                done = self._done
                try:
                    if done is not None and not done():
                        return
                except Exception as exc:  # noqa: BLE001 - the waiting task raises it
                    fut.set_exception(exc)
                    return
                fut.set_result(None)
        elif self._idle:
            self.close()
        else:
            self._idle = 1

    @property
    def watching(self) -> bool:
        """True while the loop watches the socket."""
        return self._loop is not None

    def close(self) -> None:
        """Stop watching (if watching)."""
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
            self._loop = None
