"""RetryPolicy is validated on construction; each error names the field, the value and the fix."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import perdure
from perdure import InvalidArgument, RetryPolicy

# (keyword arguments, fragments the message must contain: field, value, fix)
INVALID: list[tuple[dict[str, Any], tuple[str, ...]]] = [
    ({"max_attempts": 0}, ("RetryPolicy.max_attempts", "0", "use 1 for no retries")),
    ({"max_attempts": -3}, ("RetryPolicy.max_attempts", "-3", "use 1 for no retries")),
    ({"max_attempts": 2.5}, ("RetryPolicy.max_attempts", "2.5", "must be an int")),
    ({"max_attempts": "3"}, ("RetryPolicy.max_attempts", "'3'", "must be an int")),
    ({"max_attempts": True}, ("RetryPolicy.max_attempts", "True", "must be an int")),
    ({"initial_interval": 0}, ("RetryPolicy.initial_interval", "0", "must be > 0", "use e.g.")),
    ({"initial_interval": -1.0}, ("RetryPolicy.initial_interval", "-1.0", "must be > 0", "use e.g.")),
    ({"initial_interval": float("nan")}, ("RetryPolicy.initial_interval", "nan", "use e.g.")),
    ({"initial_interval": float("inf")}, ("RetryPolicy.initial_interval", "inf", "use e.g.")),
    ({"initial_interval": "1s"}, ("RetryPolicy.initial_interval", "'1s'", "must be a number")),
    ({"max_interval": 0.0}, ("RetryPolicy.max_interval", "0.0", "must be > 0", "use e.g.")),
    ({"backoff": 0.5}, ("RetryPolicy.backoff", "0.5", ">= 1.0", "use 1.0 for a fixed interval")),
    ({"backoff": 0}, ("RetryPolicy.backoff", "0", "use 1.0 for a fixed interval")),
    ({"backoff": None}, ("RetryPolicy.backoff", "None", "must be a number")),
    (
        {"initial_interval": 5.0, "max_interval": 1.0},
        ("RetryPolicy.max_interval", "1.0", "initial_interval", "5.0", "raise max_interval"),
    ),
    (
        {"non_retryable": [KeyError]},
        ("RetryPolicy.non_retryable", "[<class 'KeyError'>]", "a tuple of exception types"),
    ),
    (
        {"non_retryable": (int,)},
        ("RetryPolicy.non_retryable", "(<class 'int'>,)", "a tuple of exception types"),
    ),
    (
        {"non_retryable": KeyError},
        ("RetryPolicy.non_retryable", "<class 'KeyError'>", "a tuple of exception types"),
    ),
]


@pytest.mark.parametrize(("kwargs", "fragments"), INVALID, ids=[repr(k) for k, _ in INVALID])
def test_an_invalid_retry_policy_says_which_field_what_value_and_the_fix(
    kwargs: dict[str, Any], fragments: tuple[str, ...]
) -> None:
    with pytest.raises(InvalidArgument) as info:
        RetryPolicy(**kwargs)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from {message!r}"


def test_invalid_argument_is_a_value_error_and_a_perdure_error() -> None:
    with pytest.raises(ValueError, match=r"RetryPolicy\.backoff") as info:
        RetryPolicy(backoff=0.1)
    assert isinstance(info.value, perdure.PerdureError)


def test_defaults_are_documented_values() -> None:
    policy = RetryPolicy()
    assert (policy.max_attempts, policy.initial_interval, policy.backoff, policy.max_interval) == (
        3,
        1.0,
        2.0,
        100.0,
    )
    assert policy.non_retryable == ()


def test_edge_values_are_accepted() -> None:
    policy = RetryPolicy(
        max_attempts=1,
        initial_interval=0.25,
        backoff=1.0,
        max_interval=0.25,
        non_retryable=(KeyError, OSError),
    )
    assert policy.max_interval == policy.initial_interval


def test_a_retry_policy_is_frozen_and_keyword_only() -> None:
    policy = RetryPolicy()
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.max_attempts = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        RetryPolicy(5)  # type: ignore[call-arg]
