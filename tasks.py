#!/usr/bin/env python3
"""The two commands of the README, with nothing but Python 3.11+ and pip.

    python3 tasks.py run    set up, then serve the examples over HTTP (perdure server) and say what to try
    python3 tasks.py test   set up, then run the whole check: lint, types, layers, tests

``run`` passes further arguments to ``perdure server`` (``--port 9000``, say).

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


TRY = """
perdure serves the examples (examples/app.py) on {url}; in another terminal try:

  curl -s '{url}/v1/workflows?wait=5' --json '{{"workflow": "hello", "args": ["ann"]}}'
  curl -s '{url}/v1/workflows?wait=10' --json '{{"workflow": "checkout", "args": ["o-1", 100], "id": "order-o-1"}}'
  {bin}/perdure workflow start expense e-1 120 ann --id e-1      # waits up to a week for a decision
  {bin}/perdure workflow event e-1 stage
  {bin}/perdure workflow send e-1 approval '{{"approved": true, "by": "ann"}}'
  {bin}/perdure workflow result e-1
  {bin}/perdure workflow list
  {bin}/perdure workflow history order-o-1
  {bin}/perdure schedule create hourly-hello hello world --every 3600
  {bin}/perdure actor invoke ShoppingCart ann add_item '{{"sku": "mug", "quantity": 2, "cents": 1200}}'
  curl -s -X POST '{url}/v1/actors/ShoppingCart/ann/checkout?wait=5'
  {bin}/perdure actor oplog ShoppingCart ann; {bin}/perdure actor state PurchaseHistory ann
  curl -s {url}/v1/openapi.json | head -c 300; curl -s {url}/metrics | grep -E 'perdure_(instances|actor)'

(the CLI talks to http://127.0.0.1:8080 unless --server or PERDURE_SERVER={url} say otherwise).
Ctrl-C stops the server.
The scripts still run on their own: {bin}/python examples/checkout.py, approval.py, crash_recovery.py
"""


def run(extra: list[str]) -> int:
    port = extra[extra.index("--port") + 1] if "--port" in extra[:-1] else "8080"
    state = ROOT / ".perdure"
    state.mkdir(exist_ok=True)
    print(TRY.format(url=f"http://127.0.0.1:{port}", bin=BIN.relative_to(ROOT)), flush=True)
    db = f"sqlite:///{state / 'examples.db'}"
    server = [BIN / "perdure", "server", "--app", "examples/app.py", "--db", db, *extra]
    print("+", " ".join(str(a) for a in server), flush=True)
    proc = subprocess.Popen([str(a) for a in server], cwd=ROOT)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:  # the server got the same Ctrl-C: let it stop gracefully
            continue


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
    return run(sys.argv[2:]) if sys.argv[1] == "run" else test(sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
