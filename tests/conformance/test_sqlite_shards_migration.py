"""SQLite only: a database from before shards (schema 9) gets them when it is opened, and
its instances keep being claimed: each is put in the shard of its seq."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from conformance.test_store import NOW, claim
from perdure._model.records import SHARDS
from perdure._store import migrate
from perdure._store.sql import migrations
from perdure._store.sqlite import SQLiteStore


def schema_9(path: Path, instances: int) -> None:
    """A perdure database at schema 9 holding ``instances`` pending instances."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for version, sql in migrations("sqlite")[:9]:
            for statement in migrate._statements(sql):
                conn.execute(statement)
            conn.execute("INSERT OR REPLACE INTO perdure_meta VALUES ('schema_version', ?)", (str(version),))
        conn.execute("INSERT OR REPLACE INTO perdure_meta VALUES ('app', 'perdure')")
        conn.executemany(
            "INSERT INTO instances (id, name, status, input, created_at, updated_at, wake_at, seq)"
            " VALUES (?, 'wf', 'pending', x'4a31', ?, ?, ?, ?)",
            [(f"old-{n}", NOW, NOW, NOW, n + 1) for n in range(instances)],
        )
    finally:
        conn.close()


async def test_instances_from_before_shards_are_sharded_by_seq_and_claimed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    schema_9(path, 100)
    store = SQLiteStore(str(path))
    await store.open()
    try:
        assert await store.schema_version() == migrate.latest("sqlite") >= 10
        rows = sqlite3.connect(path).execute("SELECT seq, shard FROM instances").fetchall()
        assert len(rows) == 100
        assert all(shard == seq % SHARDS for seq, shard in rows)
        assert len({shard for _, shard in rows}) == SHARDS
        assert sorted(r.id for r in await claim(store)) == sorted(f"old-{n}" for n in range(100))
    finally:
        await store.close()
