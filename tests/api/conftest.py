"""Every API test runs on a clean store and with store faults injected, on SQLite and
(but for the bad-input module, whose checks come before any store) on PostgreSQL.

With faults on, about 2% of store calls each time out, commit and then fail
(ambiguous), lose the connection, or find the database busy; all surface as
``StoreUnavailable`` and the engine must retry them without breaking a promise
(no loss, one result per position, steps not re-run after their record,
idempotent start). The seed comes from ``PERDURE_SEED`` or from the test's id,
so a failure replays with the same faults. ``PERDURE_TEST_STORE_FAULTS`` replaces
the rates (e.g. ``default`` or ``ambiguous=0.2``) for a harsher local run.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import pytest

FAULTS = (
    os.environ.get("PERDURE_TEST_STORE_FAULTS") or "timeout=0.02,ambiguous=0.02,disconnect=0.02,busy=0.02"
)


@pytest.fixture(params=["clean", "faults"], autouse=True)
def store_faults(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``"clean"`` or ``"faults"``: whether engines made by this test inject store faults."""
    if request.param == "faults":
        seed = os.environ.get("PERDURE_SEED") or str(zlib.crc32(request.node.nodeid.encode()))
        monkeypatch.setenv("PERDURE_STORE_FAULTS", FAULTS)
        monkeypatch.setenv("PERDURE_SEED", seed)
    else:
        monkeypatch.delenv("PERDURE_STORE_FAULTS", raising=False)
    mode: str = request.param
    return mode


SQLITE_ONLY = frozenset({"test_bad_input"})
"""Modules whose tests check input before any store is touched: once is enough."""


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_url" in metafunc.fixturenames:
        module = metafunc.module.__name__.rsplit(".", 1)[-1]
        stores = ["sqlite"] if module in SQLITE_ONLY else ["sqlite", "postgres"]
        metafunc.parametrize("db_url", stores, indirect=True)


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database of the store this test runs on: a SQLite file, or a PostgreSQL schema."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return f"sqlite:///{tmp_path / 'perdure.db'}"
