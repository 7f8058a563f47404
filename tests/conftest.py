"""Shared fixtures: a fresh SQLite file per test, and the store URL to use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import perdure


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for this test."""
    return f"sqlite:///{tmp_path / 'perdure.db'}"


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
