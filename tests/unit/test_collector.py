"""The garbage collector's young generation while executors run: relaxed from CPython's
default only, and put back when the last executor stops."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from perdure._runtime import collector

RELAXED = (collector.YOUNG, *collector.DEFAULT[1:])


@pytest.fixture(autouse=True)
def thresholds() -> Iterator[None]:
    """Each test starts from CPython's default; the process gets its own thresholds back."""
    before = gc.get_threshold()
    gc.set_threshold(*collector.DEFAULT)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def test_the_default_is_relaxed_while_executors_run_and_put_back_after_the_last() -> None:
    collector.hold()
    assert gc.get_threshold() == RELAXED
    collector.hold()  # a second engine in the process
    collector.release()
    assert gc.get_threshold() == RELAXED, "one executor still runs"
    collector.release()
    assert gc.get_threshold() == collector.DEFAULT


def test_thresholds_an_application_chose_are_left_alone() -> None:
    gc.set_threshold(5000, 5, 5)
    collector.hold()
    assert gc.get_threshold() == (5000, 5, 5)
    collector.release()
    assert gc.get_threshold() == (5000, 5, 5)


def test_thresholds_the_application_set_meanwhile_are_not_undone() -> None:
    collector.hold()
    gc.set_threshold(3000, 10, 10)
    collector.release()
    assert gc.get_threshold() == (3000, 10, 10)
