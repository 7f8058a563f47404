"""The replay cursor against a model: a recorded journal is a list of (kind, name)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perdure._journal.cursor import Cursor, JournalGap
from perdure._model.errors import NonDeterminismError
from perdure._model.records import JournalEntry, Replay

Op = tuple[str, str]

ops = st.tuples(
    st.sampled_from(["step", "now", "random", "uuid4", "sleep"]), st.sampled_from(["a", "b", "c"])
)
histories = st.lists(ops, max_size=12)


def journal(history: list[Op], first: int | None = 0, last: int | None = None) -> Replay:
    """Entries as a store returns them for replay: by position, each with its own result."""
    return Replay(
        kinds=[kind for kind, _ in history], names=[name for _, name in history], oks=[1] * len(history),
        results=[b"J%d" % i for i in range(len(history))], attempts=[1] * len(history),
        first=first if history else None, last=len(history) - 1 if last is None and history else last,
    )  # fmt: skip


def cursor_of(recorded: list[Op]) -> Cursor:
    return Cursor(journal(recorded))


def first_difference(recorded: list[Op], calls: list[Op]) -> int | None:
    """The model: the first position where the code calls something other than what was recorded."""
    for i, (old, new) in enumerate(zip(recorded, calls, strict=False)):
        if old != new:
            return i
    return None


@given(recorded=histories, extra=histories)
def test_replaying_the_recorded_sequence_returns_its_entries_then_none(
    recorded: list[Op], extra: list[Op]
) -> None:
    cursor = cursor_of(recorded)
    assert cursor.size == len(recorded)

    for i, (kind, name) in enumerate(recorded):
        assert cursor.position < cursor.size  # still replaying
        expected = JournalEntry(position=i, kind=kind, name=name, ok=True, result=b"J%d" % i)
        assert cursor.next(kind, name) == (i, expected)
    for j, (kind, name) in enumerate(extra):
        assert cursor.position >= cursor.size  # past the record
        assert cursor.next(kind, name) == (len(recorded) + j, None)

    cursor.finish()
    assert cursor.position == len(recorded) + len(extra)


@given(recorded=histories, calls=histories)
def test_a_divergence_raises_at_the_first_differing_position_and_consumes_nothing(
    recorded: list[Op], calls: list[Op]
) -> None:
    at = first_difference(recorded, calls)
    cursor = cursor_of(recorded)

    for i, (kind, name) in enumerate(calls):
        if i == at:
            with pytest.raises(NonDeterminismError) as info:
                cursor.next(kind, name)
            assert info.value.position == i
            assert info.value.expected == f"{recorded[i][0]} {recorded[i][1]!r}"
            assert info.value.found == f"{kind} {name!r}"
            assert f"position {i}" in str(info.value)
            assert cursor.position == i, "a mismatch must not consume the position"
            # Nothing was consumed: the recorded operation is still there to replay.
            assert cursor.next(*recorded[i])[0] == i
            return
        position, entry = cursor.next(kind, name)
        assert position == i
        assert (entry is None) == (i >= len(recorded))

    assert at is None, "the model expected a divergence the cursor did not report"


@given(recorded=histories.filter(bool), data=st.data())
def test_finish_raises_while_recorded_entries_remain(recorded: list[Op], data: st.DataObject) -> None:
    replayed = data.draw(st.integers(min_value=0, max_value=len(recorded) - 1), label="replayed")
    cursor = cursor_of(recorded)
    for kind, name in recorded[:replayed]:
        cursor.next(kind, name)

    with pytest.raises(NonDeterminismError) as info:
        cursor.finish()
    assert info.value.position == replayed
    assert info.value.found == "the end of the workflow"


@given(positions=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=10, unique=True))
def test_positions_not_contiguous_from_zero_raise_journal_gap(positions: list[int]) -> None:
    positions.sort()
    entries = journal([("step", "a")] * len(positions), positions[0], positions[-1])
    if positions == list(range(len(positions))):
        Cursor(entries)  # contiguous: accepted
        return
    with pytest.raises(JournalGap, match=f"at positions {positions[0]} to {positions[-1]}"):
        Cursor(entries)


def test_no_entries_need_no_span_and_entries_need_one() -> None:
    Cursor(journal([]))
    with pytest.raises(JournalGap):
        Cursor(journal([("step", "a")], None, None))
