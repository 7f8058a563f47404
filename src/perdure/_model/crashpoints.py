"""Named crash points for crash testing: ``PERDURE_CRASHPOINT=name[:p|@n][,...]``.

At an armed point the process exits at once with status 137, as if SIGKILLed:
always (``name``), with probability ``p`` (``name:0.05``, drawn from the RNG
seeded by ``PERDURE_SEED``), or on the n-th hit (``name@3``). Unknown names
fail at start. Unarmed, ``hit`` costs one dictionary lookup.
"""

from __future__ import annotations

import os
import random
import sys

from perdure._model.errors import InvalidArgument

KNOWN = frozenset(
    {
        "step.after_effect",  # a step's function returned; its result is not recorded yet
        "journal.before_commit",  # a batch is about to be committed
        "journal.after_commit_before_ack",  # committed, the waiting code not yet told
        "lease.after_acquire",  # an executor registered its lease
        "dispatch.after_claim",  # instances were claimed, none started yet
        "recovery.mid_loop",  # recovery has started some claimed instances, not all
        "shutdown.mid_drain",  # graceful shutdown is waiting for running instances
        "actor.after_state_commit",  # an actor call's end and new state committed, not yet answered
        "actor.direct_mid_commit",  # a direct actor call's actor row written, its call not yet, no commit
        # Reached once its feature lands (durable timers):
        "timer.after_fire_before_commit",
    }
)

_armed: dict[str, tuple[str, float]] = {}
_hits: dict[str, int] = {}
_rng = random.Random()


def arm(spec: str, seed: int | None = None) -> None:
    """Arm the points in ``spec`` (the ``PERDURE_CRASHPOINT`` syntax); replaces any armed."""
    parsed: dict[str, tuple[str, float]] = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        name, mode, value = item, "always", 1.0
        if ":" in item:
            name, raw = item.split(":", 1)
            mode, value = "p", _number(item, raw)
            if not 0.0 <= value <= 1.0:
                raise InvalidArgument(f"crash point {item!r}: probability must be in [0, 1]")
        elif "@" in item:
            name, raw = item.split("@", 1)
            mode, value = "n", _number(item, raw)
            if value < 1 or value != int(value):
                raise InvalidArgument(f"crash point {item!r}: the hit number must be an integer >= 1")
        if name not in KNOWN:
            raise InvalidArgument(
                f"unknown crash point {name!r} in PERDURE_CRASHPOINT; known: {', '.join(sorted(KNOWN))}"
            )
        parsed[name] = (mode, value)
    _armed.clear()
    _armed.update(parsed)
    _hits.clear()
    _rng.seed(seed)


def _number(item: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise InvalidArgument(f"crash point {item!r}: {raw!r} is not a number") from None


def hit(name: str) -> None:
    """Exit the process here if ``name`` is armed and its condition holds."""
    armed = _armed.get(name)
    if armed is None:
        return
    mode, value = armed
    if mode == "p" and _rng.random() >= value:
        return
    if mode == "n":
        _hits[name] = count = _hits.get(name, 0) + 1
        if count != value:
            return
    os._exit(137)


def seed_from_env() -> int:
    """``PERDURE_SEED``, or a fresh seed; printed either way so a failing run can be replayed."""
    raw = os.environ.get("PERDURE_SEED", "")
    if raw and not raw.isdigit():
        raise InvalidArgument(f"PERDURE_SEED must be a non-negative integer, got {raw!r}")
    seed = int(raw) if raw else random.SystemRandom().randrange(2**32)
    print(f"perdure: PERDURE_SEED={seed}", file=sys.stderr, flush=True)
    return seed


def arm_from_env() -> None:
    spec = os.environ.get("PERDURE_CRASHPOINT", "")
    if spec:
        arm(spec, seed_from_env())
