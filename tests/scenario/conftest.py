"""Scenario fixtures: a factory of scenarios whose workers never outlive the test; the slow gate."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from .cluster import Cluster
from .harness import MakeScenario, Scenario

HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's ``slow`` tests unless PERDURE_SLOW=1 (CI runs the bounded versions)."""
    if os.environ.get("PERDURE_SLOW") == "1":
        return
    skip = pytest.mark.skip(
        reason="slow: a long kill-and-restart soak; set PERDURE_SLOW=1 to run it (the short version always runs)"
    )
    for item in items:
        if "slow" in item.keywords and item.path.is_relative_to(HERE):
            item.add_marker(skip)


@pytest.fixture
def make_scenario(tmp_path: Path) -> Iterator[MakeScenario]:
    """``make_scenario(workflows, steps)``: a fresh database and ledger; workers are killed at teardown."""
    made: list[Scenario] = []

    def make(
        workflows: int, steps: int, *, sync_workflow: bool = False, engine_url: str | None = None
    ) -> Scenario:
        sc = Scenario(tmp_path / f"scenario-{len(made)}", workflows, steps, sync_workflow, engine_url)
        made.append(sc)
        return sc

    yield make
    for sc in made:
        sc.stop()


@pytest.fixture
def private_postgres(postgres_server: str) -> Iterator[Cluster]:
    """A started PostgreSQL cluster of this test's own, which it may kill and restart."""
    if shutil.which("initdb") is None or shutil.which("pg_ctl") is None:
        reason = "the PostgreSQL server binaries (initdb, pg_ctl) are not on PATH"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {reason}")  # CI must not pass by skipping the restart test
        pytest.skip(reason)
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()
