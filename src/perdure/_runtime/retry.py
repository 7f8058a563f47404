"""Pure retry decisions: whether a failed attempt is retried, and when."""

from __future__ import annotations

from perdure._model.errors import NonRetryableError
from perdure._model.policies import RetryPolicy


def backoff_delay(policy: RetryPolicy, attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based) before the next one."""
    if attempt < 1:
        raise ValueError(f"attempt is 1-based, got {attempt}")
    # Cap the exponent so huge attempt counts cannot overflow the float.
    exponent = min(attempt - 1, 1024)
    try:
        delay = policy.initial_interval * policy.backoff**exponent
    except OverflowError:
        delay = policy.max_interval
    return min(delay, policy.max_interval)


def should_retry(policy: RetryPolicy, attempt: int, error: BaseException) -> bool:
    """Whether failed attempt ``attempt`` (1-based) earns another one."""
    if isinstance(error, (NonRetryableError, policy.non_retryable)):
        return False
    return attempt < policy.max_attempts
