"""The shared "is PostgreSQL there?" fixture: skips with the reason, but fails under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
def test_needs_postgres(postgres_url):
    pass
"""


def run_probe(tmp_path: Path, *, ci: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PERDURE_TEST_POSTGRES_URL"] = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1"
    if ci:
        env["CI"] = "true"
    root = Path(__file__).parent
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", f"--rootdir={tmp_path}",
         f"--confcutdir={root}", "-c", os.devnull, "--override-ini", "asyncio_mode=auto",
         "-p", "tests.conftest", str(tmp_path / "test_probe.py")],
        capture_output=True, text=True, timeout=60, check=False, env=env, cwd=root.parent,
    )  # fmt: skip


@pytest.mark.parametrize("ci", [False, True])
def test_without_a_server_postgres_tests_skip_with_the_reason_or_fail_in_ci(tmp_path: Path, ci: bool) -> None:
    proc = run_probe(tmp_path, ci=ci)
    out = proc.stdout + proc.stderr
    assert "no PostgreSQL answers at PERDURE_TEST_POSTGRES_URL" in out, out
    if ci:
        assert proc.returncode == 1, out
        assert "CI=true" in out
    else:
        assert proc.returncode == 0, out
        assert "1 skipped" in out
