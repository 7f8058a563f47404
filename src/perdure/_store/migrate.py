"""Schema migrations: apply what is missing, refuse what is foreign or newer.

Dialect-neutral decisions over a DB-API connection; the store runs this on its
writer connection inside a write transaction, so two processes opening one
fresh database at once migrate it once.
"""

from __future__ import annotations

from typing import Any, Protocol

from perdure._model.errors import IncompatibleDatabase
from perdure._store.sql import migrations, queries

APP = "perdure"


class Cursorish(Protocol):
    def execute(self, sql: str, params: Any = ..., /) -> Any: ...


def latest(dialect: str) -> int:
    return len(migrations(dialect))


def apply(conn: Cursorish, dialect: str, tables: list[str], where: str) -> int:
    """Bring the schema up to date; returns the version now in place.

    ``tables``: names of the tables that exist (to tell an empty database from a
    foreign one). ``where``: a description of the database for error messages.
    """
    q = queries(dialect)
    if "perdure_meta" not in tables:
        user_tables = [t for t in tables if not t.startswith("sqlite_")]
        if user_tables:
            shown = ", ".join(sorted(user_tables)[:5])
            raise IncompatibleDatabase(
                f"{where} is not a perdure database (it has tables {shown}); "
                "point perdure at a new file or an empty database"
            )
        current = 0
    else:
        app = conn.execute(q["meta_get"], ("app",)).fetchone()
        if app is None or app[0] != APP:
            raise IncompatibleDatabase(f"{where} is not a perdure database")
        current = int(conn.execute(q["meta_get"], ("schema_version",)).fetchone()[0])
    newest = latest(dialect)
    if current > newest:
        raise IncompatibleDatabase(
            f"{where} has schema version {current}, newer than this perdure knows "
            f"({newest}); upgrade perdure to open it"
        )
    for version, sql in migrations(dialect)[current:]:
        for statement in _statements(sql):
            conn.execute(statement)
        conn.execute(q["meta_set"], ("app", APP))
        conn.execute(q["meta_set"], ("schema_version", str(version)))
    return newest


def _statements(sql: str) -> list[str]:
    # Migrations hold DDL only: no semicolons inside literals or triggers.
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
