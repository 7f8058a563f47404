"""``perdure migrate --db URL``: the real command in a subprocess, on both stores."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

import perdure
from perdure._store import migrate as schema


def perdure_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "perdure._cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_migrate_creates_the_latest_schema_and_is_idempotent(
    store: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}" if store == "sqlite" else request.getfixturevalue("postgres_url")
    latest = schema.latest("sqlite" if store == "sqlite" else "postgres")
    for _ in range(2):
        done = perdure_cli("migrate", "--db", url)
        assert done.returncode == 0, done.stderr
        assert f"schema version {latest}" in done.stdout


def test_migrate_refuses_a_foreign_database_with_its_exit_code(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER)")
    done = perdure_cli("migrate", "--db", postgres_url)
    assert done.returncode == perdure.IncompatibleDatabase.exit_code
    assert "not a perdure database" in done.stderr
    assert "invoices" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrate_refuses_a_file_that_is_no_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 200)
    done = perdure_cli("migrate", "--db", f"sqlite:///{junk}")
    assert done.returncode not in (0, 1), done.stderr  # perdure's exit code for the error, not a crash
    assert "cannot migrate" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrate_never_shows_the_password() -> None:
    done = perdure_cli("migrate", "--db", "postgresql://someone:s3cret@127.0.0.1:1/db?connect_timeout=1")
    assert done.returncode != 0
    assert "s3cret" not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr
