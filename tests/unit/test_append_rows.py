"""The rows of appends: an append of journal entries alone takes the short path."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from perdure._model.records import (
    Append,
    InstanceRow,
    InstanceUpdate,
    JournalEntry,
    Message,
    RetryState,
    Status,
)
from perdure._store.rows import AppendRows

ENTRY = JournalEntry(
    position=0, kind="step", name="charge", ok=True, result=b"J1", attempts=1, started_at=1.0, ended_at=2.0
)
MESSAGE = Message(target="wf-2", topic="t", payload=b"J1", at=1.0, sender_key="wf-1:0")
WRITES: dict[str, Any] = {
    "retries": (RetryState(position=1, attempts=1, last_error=b"J{}", next_at=3.0),),
    "update": InstanceUpdate(status=Status.COMPLETED, updated_at=2.0, output=b"J1"),
    "sends": (MESSAGE,),
    "consumes": (("t", 1),),
    "events": (("key", b"J1", 1.0),),
    "children": (
        InstanceRow(id="wf-3", name="wf", status=Status.PENDING, input=b"J1", created_at=1.0, updated_at=1.0),
    ),
    "mail": (msgspec.structs.replace(MESSAGE, target="Counter/k"),),
}
"""Fields of ``Append`` that write rows of their own, with a value that does."""


def test_journal_entries_alone_are_one_insert() -> None:
    rows = AppendRows()
    rows.add(Append(instance_id="wf-1", token=1, entries=(ENTRY,)))
    rows.add(Append(instance_id="wf-2", token=1))
    assert rows.entries_only
    assert [name for name, _ in rows.statements(lock=True)] == ["journal_insert"]


@pytest.mark.parametrize("field", sorted(WRITES))
def test_any_other_write_takes_every_statement_it_needs(field: str) -> None:
    rows = AppendRows()
    rows.add(Append(instance_id="wf-1", token=1, entries=(ENTRY,)))
    rows.add(Append(instance_id="wf-1", token=1, **{field: WRITES[field]}))
    assert not rows.entries_only
    assert {name for name, _ in rows.statements()} - {"journal_insert"}
