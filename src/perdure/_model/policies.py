"""User-facing policy values, validated on construction."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from perdure._model.errors import InvalidArgument


def _positive(owner: str, name: str, value: float, fix: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgument(f"{owner}.{name} must be a number, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise InvalidArgument(f"{owner}.{name} must be > 0, got {value!r}; {fix}")


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How a failing step is retried: exponential backoff, capped, with a limit.

    Attempt ``n`` (1-based) that fails waits ``initial_interval * backoff ** (n - 1)``
    seconds, at most ``max_interval``, before attempt ``n + 1``. The attempt count,
    last error and next attempt time are recorded, so a crash during the wait
    neither resets the count nor restarts the wait.
    """

    max_attempts: int = 3
    """Attempts in all, the first included; 1 means no retry. Default 3."""
    initial_interval: float = 1.0
    """Seconds to wait after the first failure. Default 1.0."""
    backoff: float = 2.0
    """Factor the wait grows by after each failure; 1.0 keeps it fixed. Default 2.0."""
    max_interval: float = 100.0
    """Cap on any single wait, in seconds. Default 100.0."""
    non_retryable: tuple[type[BaseException], ...] = field(default=())
    """Exception types that fail the step at once. ``NonRetryableError`` always does."""

    def __post_init__(self) -> None:
        owner = "RetryPolicy"
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidArgument(f"{owner}.max_attempts must be an int, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise InvalidArgument(
                f"{owner}.max_attempts must be >= 1, got {self.max_attempts}; use 1 for no retries"
            )
        _positive(owner, "initial_interval", self.initial_interval, "use e.g. 1.0 second")
        _positive(owner, "max_interval", self.max_interval, "use e.g. 60.0 seconds")
        _positive(owner, "backoff", self.backoff, "use 1.0 for a fixed interval")
        if self.backoff < 1.0:
            raise InvalidArgument(
                f"{owner}.backoff must be >= 1.0, got {self.backoff}; use 1.0 for a fixed interval"
            )
        if self.max_interval < self.initial_interval:
            raise InvalidArgument(
                f"{owner}.max_interval ({self.max_interval}) must be >= initial_interval "
                f"({self.initial_interval}); raise max_interval or lower initial_interval"
            )
        if not isinstance(self.non_retryable, tuple) or not all(
            isinstance(t, type) and issubclass(t, BaseException) for t in self.non_retryable
        ):
            raise InvalidArgument(
                f"{owner}.non_retryable must be a tuple of exception types, got {self.non_retryable!r}"
            )


DEFAULT_RETRY = RetryPolicy()
NO_RETRY = RetryPolicy(max_attempts=1)
