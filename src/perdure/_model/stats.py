"""Plain counters and histograms the engine keeps about itself, for ``/metrics``.

The core only adds numbers here (a bisect and two increments per observation,
no locks: every observation happens on the engine's loop thread, or in a
``def`` workflow's thread where a lost increment costs a metric, never a
record). The server reads them at scrape time and exports them in the
Prometheus format; nothing below the server knows that format.
"""

from __future__ import annotations

from bisect import bisect_left

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0)
"""Upper bounds (seconds) of the latency histograms; one more bucket catches the rest."""
SIZE_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
"""Upper bounds of the commit batch size histogram (operations per commit)."""


class Histogram:
    """Counts of observations per bucket (not cumulative), their sum and their number."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1


class Stats:
    """What one engine observed since it was made."""

    __slots__ = ("claim_lag", "commit_ops", "commit_seconds", "step_retries", "step_seconds", "steps_failed")

    def __init__(self) -> None:
        self.commit_ops = Histogram(SIZE_BUCKETS)
        """Operations per group commit."""
        self.commit_seconds = Histogram(LATENCY_BUCKETS)
        """Time one group commit took, store call included."""
        self.step_seconds = Histogram(LATENCY_BUCKETS)
        """Duration of a step's last attempt, for every step that ended (succeeded or failed)."""
        self.step_retries = 0
        """Attempts beyond the first, over all steps that ended."""
        self.steps_failed = 0
        """Steps that failed for good."""
        self.claim_lag = Histogram(LATENCY_BUCKETS)
        """Ready-queue lag: from an instance being due (started, woken, retried) to its claim."""

    def step_ended(self, seconds: float, attempts: int, ok: bool) -> None:
        self.step_seconds.observe(seconds)
        self.step_retries += attempts - 1
        if not ok:
            self.steps_failed += 1
