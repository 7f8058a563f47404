"""Payload round trips: what goes in comes back equal, and as the type the code declared."""

from __future__ import annotations

import inspect
import typing
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from perdure._codec import serializer


@dataclass(frozen=True)
class Address:
    street: str
    number: int


@dataclass(frozen=True)
class Order:
    id: str
    amount: float
    items: list[int]
    placed_at: datetime
    ship_to: Address
    note: str | None = None
    tags: dict[str, int] = field(default_factory=dict)


class Receipt(msgspec.Struct, frozen=True):
    order: uuid.UUID
    paid: bytes
    lines: list[tuple[str, int]]
    at: datetime


# Offsets in whole minutes: RFC 3339 (what JSON carries) has no seconds in an offset.
aware_datetimes = st.datetimes(
    min_value=datetime(1900, 1, 1),
    max_value=datetime(2200, 1, 1),
    timezones=st.builds(
        timezone,
        st.integers(min_value=-23 * 60 - 59, max_value=23 * 60 + 59).map(lambda m: timedelta(minutes=m)),
    )
    | st.just(UTC),
)
texts = st.text(max_size=20)
finite_floats = st.floats(allow_nan=False, allow_infinity=False)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | finite_floats | texts,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=20,
)
addresses = st.builds(Address, street=texts, number=st.integers(min_value=-(2**63), max_value=2**63 - 1))
orders = st.builds(
    Order,
    id=texts,
    amount=finite_floats,
    items=st.lists(st.integers(min_value=0, max_value=10**9), max_size=5),
    placed_at=aware_datetimes,
    ship_to=addresses,
    note=st.none() | texts,
    tags=st.dictionaries(texts, st.integers(min_value=0, max_value=100), max_size=3),
)
receipts = st.builds(
    Receipt,
    order=st.uuids(),
    paid=st.binary(max_size=64),
    lines=st.lists(st.tuples(texts, st.integers(min_value=0, max_value=1000)), max_size=3),
    at=aware_datetimes,
)


relaxed = settings(deadline=None)
"""Per-example timing is no property of a codec; a loaded CI machine must not fail it."""


def roundtrip(value: object, type_: Any = Any) -> Any:
    data = serializer.encode(value)
    assert data[:1] == serializer.JSON, "every payload starts with its format id"
    return serializer.decode(data, type_)


@relaxed
@given(json_values)
def test_plain_json_values_round_trip(value: object) -> None:
    assert roundtrip(value) == value


@relaxed
@given(orders)
def test_dataclasses_round_trip_as_themselves(order: Order) -> None:
    back = roundtrip(order, Order)
    assert isinstance(back, Order)
    assert isinstance(back.ship_to, Address)
    assert back == order
    assert back.placed_at.utcoffset() == order.placed_at.utcoffset()


@relaxed
@given(receipts)
def test_msgspec_structs_round_trip_as_themselves(receipt: Receipt) -> None:
    back = roundtrip(receipt, Receipt)
    assert isinstance(back, Receipt)
    assert back == receipt


@relaxed
@given(aware_datetimes)
def test_aware_datetimes_keep_their_instant_and_offset(when: datetime) -> None:
    back = roundtrip(when, datetime)
    assert back == when
    assert back.utcoffset() == when.utcoffset()


@relaxed
@given(st.binary(max_size=256))
def test_bytes_round_trip(data: bytes) -> None:
    assert roundtrip(data, bytes) == data


@relaxed
@given(st.uuids())
def test_uuids_round_trip(value: uuid.UUID) -> None:
    back = roundtrip(value, uuid.UUID)
    assert isinstance(back, uuid.UUID)
    assert back == value


@relaxed
@given(st.lists(st.dictionaries(texts, st.lists(orders, max_size=2), max_size=2), max_size=3))
def test_nested_containers_of_typed_values_round_trip(value: list[dict[str, list[Order]]]) -> None:
    assert roundtrip(value, list[dict[str, list[Order]]]) == value


def test_without_a_type_values_decode_as_plain_json() -> None:
    when = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    back = roundtrip({"at": when, "addr": Address("Main", 1)})
    assert back == {"at": "2024-05-01T12:00:00Z", "addr": {"street": "Main", "number": 1}}


def test_encoding_is_deterministic_whatever_the_key_order() -> None:
    assert serializer.encode({"b": 1, "a": 2}) == serializer.encode({"a": 2, "b": 1})


def test_an_unknown_format_byte_is_rejected() -> None:
    body = serializer.encode({"a": 1})[1:]
    for bad in (b"P" + body, b"\x00" + body, b""):
        with pytest.raises(ValueError, match="unknown payload format"):
            serializer.decode(bad)


def test_unserializable_values_raise_type_error() -> None:
    with pytest.raises(TypeError):
        serializer.encode(object())


def test_errors_round_trip_with_type_message_and_traceback() -> None:
    try:
        raise KeyError("missing-sku")
    except KeyError as exc:
        data = serializer.encode_error(exc)
    info = serializer.decode_error(data)
    assert info.type == "KeyError"
    assert info.message == "'missing-sku'"
    assert "raise KeyError" in info.traceback


# --- arguments --------------------------------------------------------------


def place(
    order: Order, copies: int, *extra: uuid.UUID, when: datetime, priority: int = 0, **labels: str
) -> None:
    """A function whose arguments are recorded, with every kind of parameter."""


PLACE = inspect.signature(place)
PLACE_HINTS = typing.get_type_hints(place)


@relaxed
@given(
    order=orders,
    copies=st.integers(min_value=0, max_value=100),
    extra=st.lists(st.uuids(), max_size=3),
    when=aware_datetimes,
    priority=st.none() | st.integers(min_value=0, max_value=9),
    labels=st.dictionaries(texts.filter(lambda s: s not in PLACE.parameters), texts, max_size=3),
)
def test_arguments_decode_as_their_parameters_types(
    order: Order,
    copies: int,
    extra: list[uuid.UUID],
    when: datetime,
    priority: int | None,
    labels: dict[str, str],
) -> None:
    kwargs: dict[str, Any] = dict(labels, when=when)
    if priority is not None:
        kwargs["priority"] = priority
    bound = PLACE.bind(order, copies, *extra, **kwargs)

    decoded = serializer.decode_input(PLACE, PLACE_HINTS, serializer.encode_input(bound.arguments))

    assert decoded == bound.arguments
    assert isinstance(decoded["order"], Order)
    assert all(isinstance(u, uuid.UUID) for u in decoded.get("extra", ()))
    assert isinstance(decoded["when"], datetime)
    # A parameter left to its default is not recorded, so the current default applies.
    assert ("priority" in decoded) is (priority is not None)
    again = inspect.BoundArguments(PLACE, decoded)
    assert again.args[:2] == (order, copies)


def test_arguments_for_parameters_the_function_lacks_are_rejected() -> None:
    data = serializer.encode_input({"order": 1, "nope": 2})

    def takes_order(order: int) -> None: ...

    sig = inspect.signature(takes_order)
    with pytest.raises(msgspec.ValidationError, match="nope"):
        serializer.decode_input(sig, typing.get_type_hints(takes_order), data)


def test_arguments_of_the_wrong_type_are_rejected() -> None:
    def takes_when(when: datetime) -> None: ...

    sig = inspect.signature(takes_when)
    with pytest.raises(msgspec.ValidationError, match="when"):
        serializer.decode_input(sig, typing.get_type_hints(takes_when), serializer.encode_input({"when": 42}))


def test_unannotated_arguments_decode_as_plain_json() -> None:
    def loose(a, b=None):  # type: ignore[no-untyped-def]
        """No annotations at all."""

    sig = inspect.signature(loose)
    data = serializer.encode_input({"a": {"x": [1, 2]}, "b": "s"})
    assert serializer.decode_input(sig, {}, data) == {"a": {"x": [1, 2]}, "b": "s"}
