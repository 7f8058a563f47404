#!/usr/bin/env python3
"""The two commands of the README, with nothing but Python 3.11+ and pip.

    python3 tasks.py run    set up, then run the examples (retries, a week-long approval, a crash and its recovery)
    python3 tasks.py test   set up, then run the whole check: lint, types, layers, tests

Setting up makes ./.venv and installs perdure into it (editable, with the test
tools); it is skipped when nothing changed since the last time.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / "python"
STAMP = VENV / ".perdure-setup"


def sh(*args: str | Path, env: dict[str, str] | None = None) -> int:
    print("+", " ".join(str(a) for a in args), flush=True)
    return subprocess.call([str(a) for a in args], cwd=ROOT, env=env)


def setup() -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - this script must say so on older Pythons
        sys.exit(f"perdure needs Python 3.11 or newer; this is {sys.version.split()[0]}")
    if not PY.exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == want:
        return
    if sh(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip") != 0:
        sys.exit("could not upgrade pip in .venv")
    if sh(PY, "-m", "pip", "install", "--quiet", "-e", ".[dev]") != 0:
        sys.exit("could not install perdure and its test tools into .venv")
    STAMP.write_text(want)


def run() -> int:
    for example in ("examples/checkout.py", "examples/approval.py", "examples/crash_recovery.py"):
        code = sh(PY, example)
        if code != 0:
            return code
    return 0


def test(extra: list[str]) -> int:
    steps: list[tuple[str, list[str | Path]]] = [
        ("ruff lint", [BIN / "ruff", "check", "src", "tests", "examples", "tasks.py"]),
        ("ruff format", [BIN / "ruff", "format", "--check", "src", "tests", "examples", "tasks.py"]),
        ("mypy --strict", [BIN / "mypy"]),
        ("import layers", [BIN / "lint-imports"]),
        ("pytest", [PY, "-m", "pytest", *extra]),
    ]
    failed = [name for name, cmd in steps if sh(*cmd) != 0]
    if failed:
        print(f"FAILED: {', '.join(failed)}", flush=True)
        return 1
    print("all checks passed", flush=True)
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"run", "test"}:
        print(__doc__)
        return 2
    setup()
    return run() if sys.argv[1] == "run" else test(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
