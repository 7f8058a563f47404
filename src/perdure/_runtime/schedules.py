"""Schedule decisions, pure: when the next tick is, and which ticks to start now.

Everything here is a function of a schedule row, ``now`` and whether the
previous run is still going; the executor does the reading and the
compare-and-set commit.

- ``cron`` (5 fields, or 6 with seconds last) in ``timezone``, or ``every`` seconds.
- ``overlap``: ``skip`` (never two runs at once: a tick due while the previous run
  goes is dropped), ``buffer_one`` (held until the previous run ends, at most one),
  ``allow_all`` (start regardless).
- ``catchup`` for ticks missed while no executor ran: ``latest`` (start the most
  recent one), ``all`` (every one, up to 1,000), ``none`` (only a tick at most a
  minute late).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from perdure._model.errors import InvalidArgument
from perdure._model.records import ScheduleRow

OVERLAP = ("skip", "buffer_one", "allow_all")
CATCHUP = ("latest", "all", "none")
MAX_CATCHUP = 1000
LATE_GRACE = 60.0
"""``catchup="none"`` still starts a tick this many seconds late (a slow poll is not an outage)."""


def validate(cron: str | None, every: float | None, timezone: str, overlap: str, catchup: str) -> None:
    """Raise ``InvalidArgument`` naming the field, the value and the fix."""
    if (cron is None) == (every is None):
        raise InvalidArgument("a schedule needs exactly one of cron='...' or every=<seconds>")
    if cron is not None and (not isinstance(cron, str) or not croniter.is_valid(cron)):
        raise InvalidArgument(
            f"cron {cron!r} is not a valid cron expression; use 5 fields like '*/5 * * * *' "
            "(or 6, seconds last)"
        )
    if every is not None and (
        isinstance(every, bool) or not isinstance(every, (int, float)) or not every >= 1
    ):
        raise InvalidArgument(f"every must be a number of seconds >= 1, got {every!r}")
    zone(timezone)
    if overlap not in OVERLAP:
        raise InvalidArgument(f"overlap must be one of {', '.join(OVERLAP)}, got {overlap!r}")
    if catchup not in CATCHUP:
        raise InvalidArgument(f"catchup must be one of {', '.join(CATCHUP)}, got {catchup!r}")


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise InvalidArgument(
            f"unknown time zone {name!r}; use an IANA name like 'Europe/Paris' or 'UTC'"
        ) from None


def next_tick(cron: str | None, every: float | None, timezone: str, after: float) -> float:
    """The first tick strictly after ``after`` (epoch seconds)."""
    if every is not None:
        return after + every
    assert cron is not None
    start = datetime.fromtimestamp(after, zone(timezone))
    return float(croniter(cron, start).get_next(float))


def tick_id(schedule_id: str, tick: float) -> str:
    """The instance id of a tick: the same for the same tick, in any process."""
    return f"{schedule_id}@{datetime.fromtimestamp(tick, UTC).isoformat(timespec='milliseconds')}"


@dataclass(frozen=True, slots=True)
class Plan:
    starts: tuple[float, ...]
    """Tick times to start now, oldest first."""
    next_at: float
    buffered_at: float | None


def plan(row: ScheduleRow, now: float, previous_running: bool) -> Plan:
    """What to start at ``now``, and where the schedule goes next."""
    due: list[float] = []
    t = row.next_at
    while t <= now and len(due) < MAX_CATCHUP:
        due.append(t)
        t = next_tick(row.cron, row.every, row.timezone, t)
    if t <= now:  # an outage longer than MAX_CATCHUP ticks: jump over the rest
        t = next_tick(row.cron, row.every, row.timezone, now)
    if row.catchup == "latest":
        due = due[-1:]
    elif row.catchup == "none":
        due = [d for d in due[-1:] if now - d <= LATE_GRACE]
    candidates = ([row.buffered_at] if row.buffered_at is not None else []) + due
    if row.overlap == "allow_all":
        return Plan(tuple(candidates), t, None)
    if row.overlap == "skip":
        return Plan(() if previous_running or not candidates else (candidates[-1],), t, None)
    # buffer_one: one run at a time, and at most one tick held back for when it ends.
    if previous_running:
        return Plan((), t, candidates[-1] if candidates else None)
    if not candidates:
        return Plan((), t, None)
    return Plan((candidates[0],), t, candidates[-1] if len(candidates) > 1 else None)
