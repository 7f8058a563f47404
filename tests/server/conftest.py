"""A real ``perdure server`` subprocess on a free port, driven over HTTP and by the real CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).parent
SERVING = re.compile(r"serving app .* on (http://\S+) ")


def env(path: Path = HERE, /, **extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("PERDURE_")}
    out["PYTHONPATH"] = os.pathsep.join([str(path), out.get("PYTHONPATH", "")])
    out.update(extra)
    return out


def perdure_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "perdure._cli.main", *args]


class Server:
    """One server process; ``url`` once it serves. Killed at teardown if still running."""

    def __init__(self, db: str, *args: str, app: str = "served_app", path: Path = HERE) -> None:
        self.db = db
        self.proc = subprocess.Popen(
            perdure_cmd("server", "--app", app, "--db", db, "--port", "0", *args),
            env=env(path), stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=path,
        )  # fmt: skip
        self.log: list[str] = []
        self.url = self._wait_serving()

    def _wait_serving(self) -> str:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:  # the process writes this line once it listens
            self.log.append(line)
            found = SERVING.search(line)
            if found:
                return found.group(1)
        raise AssertionError(f"server exited with {self.proc.wait()} before serving:\n{''.join(self.log)}")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        assert self.proc.stderr is not None
        self.log.append(self.proc.stderr.read())
        return code


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'served.db'}"


@pytest.fixture
def start_server(db: str) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def start(*args: str, database: str | None = None) -> Server:
        s = Server(database or db, *args)
        started.append(s)
        return s

    yield start
    for s in started:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait()
        if s.proc.stderr is not None:
            s.proc.stderr.close()


@pytest.fixture
def server(start_server: Callable[..., Server]) -> Server:
    return start_server()


@pytest.fixture
def api(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


def run_cli(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        perdure_cmd(*args),
        env=env(**extra_env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=HERE,
    )
