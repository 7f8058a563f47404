"""The ``store`` fixture: every conformance test runs on each backend listed in BACKENDS
(``pg_store``, ``sqlite_store``: one store alone, for the tests of that store only).

A backend knows how to make a store on a fresh database of its own, and how
to tamper with that database from outside the store (foreign tables, a newer
schema) for the migration tests. PostgreSQL gets a fresh schema per test (the
``postgres_url`` fixture of tests/conftest.py, which skips without a server).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

import psycopg
import pytest

from perdure._store.postgres import PostgresStore
from perdure._store.protocol import Store
from perdure._store.sqlite import SQLiteStore


class Backend(Protocol):
    name: str

    def make_store(self) -> Store:
        """A store (not yet opened) on this backend's database."""

    def add_foreign_table(self) -> None:
        """Give the database a table of some other application."""

    def set_meta(self, key: str, value: str) -> None:
        """Overwrite a row of perdure_meta, behind the store's back."""

    def corrupt(self) -> None:
        """Make the database something the backend cannot read as a database at all."""

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        """What a query without parameters reads, from outside the store."""


class SQLiteBackend:
    name = "sqlite"

    def __init__(self, tmp_path: Path) -> None:
        self.path = tmp_path / "store.db"

    def make_store(self) -> Store:
        return SQLiteStore(str(self.path))

    def _execute(self, sql: str, params: tuple[str, ...] = ()) -> None:
        conn = sqlite3.connect(self.path)
        try:
            with conn:
                conn.execute(sql, params)
        finally:
            conn.close()

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        conn = sqlite3.connect(self.path)
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()

    def add_foreign_table(self) -> None:
        self._execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")

    def set_meta(self, key: str, value: str) -> None:
        self._execute("UPDATE perdure_meta SET value = ? WHERE key = ?", (value, key))

    def corrupt(self) -> None:
        self.path.write_bytes(b"these are not the pages you are looking for\n" * 200)


class PostgresBackend:
    name = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url

    def make_store(self) -> Store:
        return PostgresStore(self.url)

    def _execute(self, sql: str, params: tuple[str, ...] = ()) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(sql, params)

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(sql).fetchall()

    def add_foreign_table(self) -> None:
        self._execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, email TEXT)")

    def set_meta(self, key: str, value: str) -> None:
        self._execute("UPDATE perdure_meta SET value = %s WHERE key = %s", (value, key))

    def corrupt(self) -> None:
        # A server cannot serve garbage pages; the nearest thing is a perdure_meta of another shape.
        self._execute("CREATE TABLE perdure_meta (garbage BYTEA)")


BACKENDS = ("postgres", "sqlite")


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "postgres":
        return PostgresBackend(request.getfixturevalue("postgres_url"))
    return SQLiteBackend(tmp_path)


@pytest.fixture
async def store(backend: Backend) -> AsyncIterator[Store]:
    """An opened store on a fresh, migrated database."""
    s = backend.make_store()
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def other(backend: Backend, store: Store) -> AsyncIterator[Store]:
    """A second store on ``store``'s database: another writer at the same time."""
    s = backend.make_store()
    await s.open()
    yield s
    await s.close()


@pytest.fixture
async def pg_store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    store = PostgresStore(postgres_url)
    await store.open()
    yield store
    await store.close()


@pytest.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    """An opened SQLite store on a fresh file: for the tests of SQLite's own machinery."""
    s = SQLiteStore(str(tmp_path / "sqlite.db"))
    await s.open()
    yield s
    await s.close()
