"""SQL text: numbered migrations and named query blocks, per dialect."""

from __future__ import annotations

import re
from functools import cache
from importlib.resources import files

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_\w+\.sql$")


@cache
def queries(dialect: str) -> dict[str, str]:
    """The named blocks of ``<dialect>/queries.sql``."""
    text = (files(__package__) / dialect / "queries.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


@cache
def migrations(dialect: str) -> tuple[tuple[int, str], ...]:
    """``(version, sql)`` of every numbered migration, in order."""
    found = []
    for entry in (files(__package__) / dialect).iterdir():
        m = _MIGRATION.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..n: {versions}")
    return tuple(found)
