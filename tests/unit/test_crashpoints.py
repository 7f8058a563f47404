"""PERDURE_CRASHPOINT specs: validated strictly; an armed point exits the process with 137."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import perdure
from perdure._model import crashpoints

CRASHED = 137


@pytest.fixture(autouse=True)
def _disarmed() -> Iterator[None]:
    # Arming in this process is only for parsing checks; never leave a point armed here.
    crashpoints.arm("")
    yield
    crashpoints.arm("")


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
    environ.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    "spec",
    [
        "step.after_effect",
        "step.after_effect:0.05",
        "step.after_effect:0",
        "step.after_effect:1",
        "journal.before_commit@1",
        "journal.before_commit@3",
        " step.after_effect , journal.before_commit@2 ,dispatch.after_claim:0.5",
        "",
    ],
)
def test_valid_specs_are_accepted(spec: str) -> None:
    crashpoints.arm(spec, seed=1)


@pytest.mark.parametrize("name", ["step.after_efect", "nope", "STEP.AFTER_EFFECT", "step"])
def test_an_unknown_point_fails_naming_it_and_the_known_ones(name: str) -> None:
    with pytest.raises(perdure.InvalidArgument) as info:
        crashpoints.arm(f"journal.before_commit,{name}")
    message = str(info.value)
    assert repr(name) in message
    assert "step.after_effect" in message
    assert "journal.after_commit_before_ack" in message


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("step.after_effect:1.5", "probability must be in [0, 1]"),
        ("step.after_effect:-0.1", "probability must be in [0, 1]"),
        ("step.after_effect:often", "'often' is not a number"),
        ("step.after_effect:", "'' is not a number"),
        ("step.after_effect@0", "integer >= 1"),
        ("step.after_effect@-2", "integer >= 1"),
        ("step.after_effect@1.5", "integer >= 1"),
        ("step.after_effect@x", "'x' is not a number"),
    ],
)
def test_malformed_probabilities_and_hit_numbers_fail(spec: str, fragment: str) -> None:
    with pytest.raises(perdure.InvalidArgument) as info:
        crashpoints.arm(spec)
    assert fragment in str(info.value)
    assert repr(spec) in str(info.value)


def test_a_failed_arm_leaves_the_previous_points_in_place() -> None:
    # Parsing happens before anything is replaced: a typo does not silently disarm.
    crashpoints.arm("step.after_effect:0")
    with pytest.raises(perdure.InvalidArgument):
        crashpoints.arm("nope")
    assert crashpoints._armed == {"step.after_effect": ("p", 0.0)}


def test_an_unarmed_or_zero_probability_point_never_fires() -> None:
    crashpoints.arm("step.after_effect:0")
    for _ in range(1000):
        crashpoints.hit("step.after_effect")
        crashpoints.hit("journal.before_commit")  # not armed


def test_an_unknown_point_in_the_environment_fails_engine_construction(
    monkeypatch: pytest.MonkeyPatch, db_url: str
) -> None:
    monkeypatch.setenv("PERDURE_CRASHPOINT", "journal.before_comit")
    with pytest.raises(perdure.InvalidArgument, match=r"journal\.before_comit"):
        perdure.Engine(db_url, registry=perdure.Registry())


def test_a_bad_seed_fails_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERDURE_SEED", "forty-two")
    with pytest.raises(perdure.InvalidArgument, match=r"PERDURE_SEED.*'forty-two'"):
        crashpoints.seed_from_env()


def test_an_armed_point_exits_the_process_with_137() -> None:
    proc = run_python(
        "from perdure._model import crashpoints\n"
        "crashpoints.arm_from_env()\n"
        "print('before', flush=True)\n"
        "crashpoints.hit('journal.before_commit')\n"
        "print('survived', flush=True)\n",
        PERDURE_CRASHPOINT="journal.before_commit",
    )
    assert proc.returncode == CRASHED, proc.stderr
    assert proc.stdout == "before\n"


def test_the_nth_hit_form_exits_on_exactly_that_hit() -> None:
    proc = run_python(
        "from perdure._model import crashpoints\n"
        "crashpoints.arm_from_env()\n"
        "for i in range(1, 10):\n"
        "    print(i, flush=True)\n"
        "    crashpoints.hit('step.after_effect')\n"
        "    crashpoints.hit('journal.before_commit')\n",
        PERDURE_CRASHPOINT="step.after_effect@4",
    )
    assert proc.returncode == CRASHED, proc.stderr
    assert proc.stdout.split() == ["1", "2", "3", "4"]


def test_the_probability_form_is_replayed_by_the_same_seed() -> None:
    code = (
        "from perdure._model import crashpoints\n"
        "crashpoints.arm_from_env()\n"
        "for i in range(10_000):\n"
        "    print(i, flush=True)\n"
        "    crashpoints.hit('dispatch.after_claim')\n"
    )
    first = run_python(code, PERDURE_CRASHPOINT="dispatch.after_claim:0.01", PERDURE_SEED="7")
    second = run_python(code, PERDURE_CRASHPOINT="dispatch.after_claim:0.01", PERDURE_SEED="7")
    assert first.returncode == second.returncode == CRASHED
    assert first.stdout == second.stdout
    assert "PERDURE_SEED=7" in first.stderr, "the seed is printed so a run can be replayed"


def test_an_armed_point_kills_an_engine_at_its_first_commit(tmp_path: Path) -> None:
    proc = run_python(
        "import asyncio, sys, perdure\n"
        "async def main():\n"
        f"    async with perdure.Engine({f'sqlite:///{tmp_path}/crash.db'!r}, registry=perdure.Registry()):\n"
        "        print('opened', flush=True)\n"
        "asyncio.run(main())\n",
        PERDURE_CRASHPOINT="lease.after_acquire",
    )
    assert proc.returncode == CRASHED, proc.stderr
    assert "opened" not in proc.stdout
