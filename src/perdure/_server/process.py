"""``perdure server`` and ``perdure worker`` as processes: load the app, open, serve, stop.

Start-up problems (a module that does not import, a port in use, a database
that cannot be opened, a public address without a token) raise ``StartupError``
with a message for people; the CLI prints it and exits non-zero, no traceback.
SIGTERM and SIGINT stop gracefully: the server stops accepting, lets requests
finish (a few seconds), then the engine lets running steps finish within
``grace`` and leaves the rest recoverable by the next executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import ipaddress
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Generator
from pathlib import Path

import uvicorn

from perdure import Engine, PerdureError
from perdure._server.app import create_app

MAX_CONNECTIONS = 1000
"""Connections and requests served at once; more get 503 at once rather than queueing unbounded."""


class StartupError(Exception):
    """The server or worker cannot start; the message says why and what to do."""


def load_app(module: str) -> None:
    """Import the user's module, whose decorated workflows register themselves (and ours:
    ``perdure.ping``)."""
    importlib.import_module("perdure._server.builtin")
    if module.endswith(".py"):  # a file: import it by name from its directory
        path = Path(module)
        if not path.is_file():
            raise StartupError(f"cannot import app file {module!r}: no such file")
        sys.path.insert(0, str(path.resolve().parent))
        module = path.stem
    elif os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would: the app is usually right here
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module == exc.name or module.startswith(exc.name + ".")):
            raise StartupError(
                f"cannot import app module {module!r}: no such module; run from the directory that holds "
                "it, or set PYTHONPATH"
            ) from None
        raise StartupError(f"app module {module!r} failed to import: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any error in user code: report it, no traceback of ours
        last = traceback.extract_tb(exc.__traceback__)[-1:]
        where = f" at {last[0].filename}:{last[0].lineno}" if last else ""
        raise StartupError(
            f"app module {module!r} failed to import: {type(exc).__name__}: {exc}{where}"
        ) from None


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is on this machine only."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def check_exposure(host: str, token: str | None, insecure: bool) -> None:
    if token or is_loopback(host):
        return
    if insecure:
        say(
            f"WARNING: serving on {host!r} without a token (--insecure-no-token): anyone who can reach "
            "this address can start, steer and cancel workflows"
        )
        return
    raise StartupError(
        f"refusing to serve on {host!r}, which other machines can reach, without a token; pass --token "
        "(or set PERDURE_TOKEN), or --insecure-no-token if something else guards this address"
    )


def bind(host: str, port: int) -> socket.socket:
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as exc:
        raise StartupError(f"cannot resolve host {host!r}: {exc.strerror}") from None
    # proto=IPPROTO_TCP, or asyncio does not set TCP_NODELAY on accepted connections and each
    # response on a kept-alive connection waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        hint = "; stop what uses it or pass another --port" if exc.errno in (98, 48, 10048) else ""
        raise StartupError(f"cannot listen on {host}:{port}: {exc.strerror}{hint}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


async def open_engine(db: str, *, executor: bool = True) -> Engine:
    try:
        engine = Engine(db, executor=executor)
        await engine.open()
    except PerdureError as exc:
        raise StartupError(f"cannot open the database {db!r}: {exc}") from None
    except OSError as exc:
        raise StartupError(f"cannot open the database {db!r}: {exc.strerror or exc}") from None
    return engine


@contextlib.contextmanager
def on_stop(stop: Callable[[], None]) -> Generator[None, None, None]:
    """Call ``stop`` on SIGTERM or SIGINT (in the running loop) while inside."""
    loop = asyncio.get_running_loop()
    sigs = (signal.SIGTERM, signal.SIGINT)
    for sig in sigs:
        loop.add_signal_handler(sig, stop)
    try:
        yield
    finally:
        for sig in sigs:
            loop.remove_signal_handler(sig)


class _Uvicorn(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # ours are installed by on_stop, so the engine closes after the server stops


def say(message: str) -> None:
    print(f"perdure: {message}", file=sys.stderr, flush=True)


async def serve(
    *, app: str, db: str, host: str, port: int, token: str | None, insecure: bool, grace: float
) -> None:
    """Serve the API and /metrics with an executor, until SIGTERM or SIGINT."""
    load_app(app)
    check_exposure(host, token, insecure)
    sock = bind(host, port)
    server: _Uvicorn | None = None
    stopping = False

    def stop() -> None:
        nonlocal stopping
        stopping = True
        if server is not None:
            server.should_exit = True

    try:
        with on_stop(stop):  # from here on: a signal during start-up stops gracefully too
            engine = await open_engine(db)
            try:
                config = uvicorn.Config(
                    create_app(engine, token=token), log_level="warning", access_log=False,
                    lifespan="off", timeout_graceful_shutdown=5, server_header=False,
                    limit_concurrency=MAX_CONNECTIONS,
                )  # fmt: skip
                server = _Uvicorn(config)
                server.should_exit = stopping
                shown = f"[{host}]" if ":" in host else host
                say(f"serving app {app!r} on http://{shown}:{sock.getsockname()[1]} (database {engine.url})")
                await server.serve(sockets=[sock])
            finally:
                say("stopping: letting running steps finish")
                await engine.close(grace)
    finally:
        sock.close()
    say("stopped")


async def work(*, app: str, db: str, grace: float) -> None:
    """Run an executor only, until SIGTERM or SIGINT."""
    load_app(app)
    stopped = asyncio.Event()
    with on_stop(stopped.set):  # from here on: a signal during start-up stops gracefully too
        engine = await open_engine(db)
        say(f"worker running app {app!r} (database {engine.url})")
        try:
            await stopped.wait()
        finally:
            say("stopping: letting running steps finish")
            await engine.close(grace)
    say("stopped")
