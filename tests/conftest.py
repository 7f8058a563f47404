"""Shared fixtures: a fresh SQLite file per test, a fresh PostgreSQL schema per test.

PostgreSQL comes from ``PERDURE_TEST_POSTGRES_URL`` (default: the local server of
DEVELOPERS.md). Tests that need it skip, with the reason, when no server answers,
and fail instead when ``CI=true``: CI must never pass by skipping them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest

import perdure

POSTGRES_URL = os.environ.get("PERDURE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for this test."""
    return f"sqlite:///{tmp_path / 'perdure.db'}"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a PostgreSQL server that answers; skips (or fails under CI=true) without one."""
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        reason = (
            f"no PostgreSQL answers at PERDURE_TEST_POSTGRES_URL ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}); start one or set the variable"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")
        pytest.skip(reason)
    return POSTGRES_URL


def in_schema(url: str, schema: str) -> str:
    """``url`` with its connections' search_path set to ``schema``."""
    option = quote(f"-csearch_path={schema}")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@contextmanager
def fresh_schema(server: str, schema: str) -> Iterator[str]:
    """A URL on the new, empty schema ``schema`` of ``server``, dropped after."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield in_schema(server, schema)
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL on a fresh, empty schema of the test server, dropped after the test.

    Other sessions may use the same database at the same time: the schema's name is random.
    """
    with fresh_schema(postgres_server, f"perdure_test_{uuid.uuid4().hex[:12]}") as url:
        yield url


@pytest.fixture
def postgres_database(postgres_server: str) -> Iterator[str]:
    """The URL of a fresh database of its own on the test server, dropped after the test
    (for tests that make schemas themselves, such as the benchmark)."""
    name = f"perdure_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(postgres_server)
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def registry() -> perdure.Registry:
    """An isolated registry, so tests can define workflows with clashing names."""
    return perdure.Registry()


@pytest.fixture(autouse=True)
def _no_inherited_faults(monkeypatch: pytest.MonkeyPatch) -> None:
    # Crash points armed in the developer's shell must not kill the test runner.
    monkeypatch.delenv("PERDURE_CRASHPOINT", raising=False)


def slow_enabled() -> bool:
    return os.environ.get("PERDURE_SLOW") == "1"
