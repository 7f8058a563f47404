"""Bounds of the pure retry math: backoff delays and the retry decision."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from perdure import NonRetryableError, RetryPolicy
from perdure._runtime.retry import backoff_delay, should_retry


@st.composite
def policies(draw: st.DrawFn) -> RetryPolicy:
    initial = draw(st.floats(min_value=1e-3, max_value=1e3, allow_nan=False, allow_infinity=False))
    return RetryPolicy(
        max_attempts=draw(st.integers(min_value=1, max_value=50)),
        initial_interval=initial,
        backoff=draw(st.floats(min_value=1.0, max_value=20.0)),
        max_interval=draw(st.floats(min_value=initial, max_value=1e6)),
    )


attempts = st.integers(min_value=1, max_value=100_000)


class TransientError(Exception):
    pass


class PermanentError(Exception):
    pass


class SpecificPermanentError(PermanentError):
    pass


class FatalForUs(NonRetryableError):
    pass


@given(policy=policies(), attempt=attempts)
def test_a_delay_never_exceeds_max_interval(policy: RetryPolicy, attempt: int) -> None:
    delay = backoff_delay(policy, attempt)
    assert 0 < delay <= policy.max_interval


@given(policy=policies(), attempt=attempts)
def test_delays_never_shrink_as_attempts_grow(policy: RetryPolicy, attempt: int) -> None:
    assert backoff_delay(policy, attempt) <= backoff_delay(policy, attempt + 1)


@given(policy=policies())
def test_the_first_delay_is_the_initial_interval(policy: RetryPolicy) -> None:
    assert backoff_delay(policy, 1) == policy.initial_interval


@given(policy=policies(), attempt=st.integers(min_value=1, max_value=30))
def test_delays_grow_by_the_backoff_factor_until_the_cap(policy: RetryPolicy, attempt: int) -> None:
    expected = min(policy.initial_interval * policy.backoff ** (attempt - 1), policy.max_interval)
    assert backoff_delay(policy, attempt) == pytest.approx(expected)


@given(attempt=attempts)
def test_a_fixed_interval_stays_fixed(attempt: int) -> None:
    policy = RetryPolicy(initial_interval=0.5, backoff=1.0, max_interval=0.5)
    assert backoff_delay(policy, attempt) == 0.5


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_are_one_based(attempt: int) -> None:
    with pytest.raises(ValueError, match="1-based"):
        backoff_delay(RetryPolicy(), attempt)


@given(policy=policies(), attempt=attempts)
def test_ordinary_errors_are_retried_until_max_attempts(policy: RetryPolicy, attempt: int) -> None:
    assert should_retry(policy, attempt, TransientError("flaky")) is (attempt < policy.max_attempts)


@given(policy=policies(), attempt=st.integers(min_value=1, max_value=10))
def test_the_last_allowed_attempt_is_never_retried(policy: RetryPolicy, attempt: int) -> None:
    assert not should_retry(policy, policy.max_attempts, TransientError("flaky"))
    assert not should_retry(policy, policy.max_attempts + attempt, TransientError("flaky"))


@given(
    policy=policies(), attempt=attempts, error=st.sampled_from([NonRetryableError("no"), FatalForUs("no")])
)
def test_non_retryable_error_is_never_retried(
    policy: RetryPolicy, attempt: int, error: NonRetryableError
) -> None:
    assert not should_retry(policy, attempt, error)


@given(
    attempt=attempts,
    error=st.sampled_from([PermanentError("p"), SpecificPermanentError("s"), KeyError("k")]),
)
def test_policy_non_retryable_types_and_subclasses_are_never_retried(attempt: int, error: Exception) -> None:
    policy = RetryPolicy(max_attempts=100_001, non_retryable=(PermanentError, KeyError))
    assert not should_retry(policy, attempt, error)
    # Other errors under the same policy still are.
    assert should_retry(policy, attempt, TransientError("t"))


def test_max_attempts_one_means_no_retry() -> None:
    assert not should_retry(RetryPolicy(max_attempts=1), 1, TransientError("once"))
