"""SQLite only: a repeated claim (``claim_repeat``, after an ambiguous commit) finds its rows
by the claim's id in an index, not by a scan of every instance; a database of schema 10
gets that index (and loses the one by owner, which nothing else read) when it is opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conformance.test_sqlite_shards_migration import schema_9
from conformance.test_store import claim
from perdure._store import migrate
from perdure._store.sql import migrations
from perdure._store.sqlite import Q, SQLiteStore


def indexes(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    finally:
        conn.close()


async def test_a_repeated_claim_is_found_through_the_claim_index(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    schema_9(path, 50)
    conn = sqlite3.connect(path, isolation_level=None)
    try:  # to schema 10, the last with the index by owner
        (version, sql) = migrations("sqlite")[9]
        for statement in migrate._statements(sql):
            conn.execute(statement)
        conn.execute("INSERT OR REPLACE INTO perdure_meta VALUES ('schema_version', ?)", (str(version),))
    finally:
        conn.close()
    assert "instances_owner" in indexes(path)
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert await store.schema_version() == migrate.latest("sqlite") >= 11
        claimed = await claim(store, claim_id="c-1")
        assert len(claimed) == 50
        again = await claim(store, claim_id="c-1")  # the same claim, as if its commit was retried
        assert sorted(r.id for r in again) == sorted(r.id for r in claimed)
    finally:
        await store.close()
    found = indexes(path)
    assert "instances_claim" in found
    assert "instances_owner" not in found
    conn = sqlite3.connect(path)
    try:
        plan = " ".join(
            r[-1] for r in conn.execute("EXPLAIN QUERY PLAN " + Q["claim_repeat"], ("ex-1", "c-1"))
        )
    finally:
        conn.close()
    assert "USING INDEX instances_claim" in plan, plan
