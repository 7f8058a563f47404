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
commit connection is).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from psycopg import errors, pq
from psycopg.adapt import PyFormat, Transformer

_PLACEHOLDER = re.compile(r"%s")
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

    async def execute(
        self, conn: psycopg.AsyncConnection[Any], params: Sequence[Any]
    ) -> list[tuple[Any, ...]]:
        """Run the statement with ``params``; its rows. Prepares it first on a connection
        that does not have it (new, or whose statements psycopg deallocated)."""
        try:
            return await self._run(conn, params)
        except errors.InvalidSqlStatementName:
            # Autocommit: the failed Bind changed nothing, so preparing and running again is safe.
            await _result(conn, lambda pg: pg.send_prepare(self.name, self.text))
            return await self._run(conn, params)

    async def _run(self, conn: psycopg.AsyncConnection[Any], params: Sequence[Any]) -> list[tuple[Any, ...]]:
        tx = Transformer(conn)
        # bytea goes as binary (no escaping); everything else as text, which the casts in the
        # query read whatever Python type it came from.
        formats = [PyFormat.BINARY if isinstance(p, bytes) else PyFormat.TEXT for p in params]
        values = tx.dump_sequence(params, formats)
        res = await _result(
            conn, lambda pg: pg.send_query_prepared(self.name, values, param_formats=tx.formats)
        )
        return [self._row(res, r) for r in range(res.ntuples)]

    def _row(self, res: pq.abc.PGresult, r: int) -> tuple[Any, ...]:
        return tuple(
            None if (v := res.get_value(r, c)) is None else parse(v) for c, parse in enumerate(self.columns)
        )


async def _result(
    conn: psycopg.AsyncConnection[Any], send: Callable[[pq.abc.PGconn], None]
) -> pq.abc.PGresult:
    """Send one command (``send(pgconn)``) and wait for its one result; a failed command
    raises psycopg's exception for its SQLSTATE, a lost connection ``OperationalError``."""
    pg = conn.pgconn
    send(pg)
    loop = asyncio.get_running_loop()
    fd = pg.socket
    while pg.flush():
        await _ready(loop, fd, writing=True)
    results: list[pq.abc.PGresult] = []
    while True:
        pg.consume_input()
        while not pg.is_busy():
            res = pg.get_result()
            if res is None:
                return _only(results, conn.info.encoding)
            results.append(res)
        await _ready(loop, fd, writing=False)


def _only(results: list[pq.abc.PGresult], encoding: str) -> pq.abc.PGresult:
    for res in results:
        if res.status == pq.ExecStatus.FATAL_ERROR:
            raise errors.error_from_result(res, encoding=encoding)
    if len(results) != 1:
        raise errors.InternalError(f"expected one result, got {len(results)}")
    return results[0]


async def _ready(loop: asyncio.AbstractEventLoop, fd: int, *, writing: bool) -> None:
    """Wait until ``fd`` is readable (or writable)."""
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
