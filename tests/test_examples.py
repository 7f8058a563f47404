"""The actor examples run as users run them, in a subprocess, and say what they show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(autouse=True)
def own_temp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The examples keep their databases under the temporary directory: this test's own, so
    that runs of other checkouts (or older perdures) at the same time do not share them."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))


def run(*args: str) -> str:
    proc = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=120, check=False, cwd=EXAMPLES
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_shopping_cart_checks_out_once_and_refuses_an_empty_cart() -> None:
    out = run("shopping_cart.py")
    assert "2 items, 21.00 total" in out
    assert "checkout({}) -> completed" in out
    assert "checking out an empty cart: ValueError: the cart is empty" in out
    assert "coupon redeemed: SPRING10" in out


def test_many_actors_keep_their_state_through_eviction_and_restart() -> None:
    out = run("many_actors.py", "--keys", "40", "--resident", "50")
    assert "400 actors made and called once" in out
    assert "50 resident" in out
    assert "after a restart all 400 actors answered with 3 calls each; 400 listed" in out
