"""``perdure server`` and ``perdure worker``: run an app's workflows, with or without the HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
DB_HELP = "database URL (sqlite:///path.db or postgresql://user@host/db)"
GRACE_HELP = "seconds running steps get to finish on SIGTERM/SIGINT; the rest is recovered later"


def _app_and_db(fn: F) -> F:
    """The options a server and a worker share: what to run, and on which database."""
    fn = click.option(
        "--db", default="sqlite:///perdure.db", show_default=True, envvar="PERDURE_DB", help=DB_HELP
    )(fn)
    return click.option(
        "--app",
        "app",
        required=True,
        metavar="MODULE",
        help="module (or .py file) whose @perdure.workflow functions and @perdure.actor classes to run",
    )(fn)


def _run(main: Coroutine[Any, Any, None]) -> None:
    from perdure._server.process import StartupError

    try:
        asyncio.run(main)
    except StartupError as exc:
        raise click.ClickException(str(exc)) from None


@click.command()
@_app_and_db
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option(
    "--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="port (0: any free one)"
)
@click.option(
    "--token", envvar="PERDURE_TOKEN", default=None, help="bearer token clients must send [env PERDURE_TOKEN]"
)
@click.option(
    "--insecure-no-token", "insecure", is_flag=True, help="allow a non-loopback --host without a token"
)
@click.option("--grace", default=10.0, show_default=True, type=click.FloatRange(0), help=GRACE_HELP)
def server(app: str, db: str, host: str, port: int, token: str | None, insecure: bool, grace: float) -> None:
    """Run an executor and serve the HTTP API (/v1, OpenAPI at /v1/openapi.json) and /metrics."""
    from perdure._server.process import serve

    _run(serve(app=app, db=db, host=host, port=port, token=token or None, insecure=insecure, grace=grace))


@click.command()
@_app_and_db
@click.option("--grace", default=10.0, show_default=True, type=click.FloatRange(0), help=GRACE_HELP)
def worker(app: str, db: str, grace: float) -> None:
    """Run an executor only (no HTTP): it picks up the work other processes start."""
    from perdure._server.process import work

    _run(work(app=app, db=db, grace=grace))
