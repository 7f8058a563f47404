"""What the CLI verbs share: talking to a server over HTTP, and printing for people or scripts.

A problem the server answers becomes a one-line error with the exit code of
its class of error (bad input 2, not found 3, conflict 4, unavailable 5); an
unreachable server says where it looked and how to start one.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    import httpx

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_SERVER = "http://127.0.0.1:8080"
EXIT_CODES = {400: 2, 404: 3, 409: 4, 503: 5, 401: 6, 413: 2, 422: 2}


class ServerError(click.ClickException):
    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click reads it per instance


class Api:
    """A connection to one server; ``call`` returns the decoded JSON body (None when empty)."""

    def __init__(self, server: str, token: str | None, *, as_json: bool) -> None:
        self.server = server.rstrip("/")
        self.as_json = as_json
        import httpx  # here: `perdure bench` runs and `perdure server` do not need it loaded

        self._unreachable = httpx.TransportError
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(
            base_url=self.server, headers=headers, timeout=httpx.Timeout(90.0, connect=5.0)
        )

    def call(
        self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:  # fmt: skip
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            r = self.http.request(method, f"/v1{path}", json=body, params=query, headers=headers)
        except self._unreachable as exc:
            raise ServerError(
                f"cannot reach the perdure server at {self.server}: {exc or type(exc).__name__}; start one with "
                "'perdure server --app MODULE', or point --server (env PERDURE_SERVER) at it",
                exit_code=5,
            ) from None
        if r.status_code >= 400:
            raise ServerError(_problem_text(r), EXIT_CODES.get(r.status_code, 1))
        return r.json() if r.content else None

    def emit(self, data: Any, human: Callable[[Any], None]) -> None:
        """``--json``: the server's answer as JSON; otherwise ``human(data)``."""
        if self.as_json:
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        else:
            human(data)


def _problem_text(r: httpx.Response) -> str:
    try:
        body = r.json()
        return f"{body.get('error') or body.get('title')} ({r.status_code}): {body.get('detail', '')}"
    except ValueError:
        return f"the server answered {r.status_code} {r.reason_phrase}"


def client(fn: F) -> F:
    """Give a verb ``--server``, ``--token`` and ``--json``; it receives an ``Api`` first."""

    @click.option(
        "--server", envvar="PERDURE_SERVER", default=DEFAULT_SERVER, show_default=True,
        help="URL of the perdure server [env PERDURE_SERVER]",
    )  # fmt: skip
    @click.option("--token", envvar="PERDURE_TOKEN", default=None, help="bearer token [env PERDURE_TOKEN]")
    @click.option("--json", "as_json", is_flag=True, help="print the server's JSON answer, for scripts")
    @functools.wraps(fn)
    def wrapper(server: str, token: str | None, as_json: bool, **kwargs: Any) -> Any:
        api = Api(server, token or None, as_json=as_json)
        try:
            return fn(api, **kwargs)
        finally:
            api.http.close()

    return wrapper  # type: ignore[return-value]


MAX_WAIT = 60.0
"""The server's longest single wait; longer waits ask again."""


def long_poll(api: Api, path: str, wait: float, *, progress: str | None) -> dict[str, Any]:
    """GET ``path?wait=`` for up to ``wait`` seconds in all, in requests of at most MAX_WAIT,
    until the answer says ``done``; with ``progress``, say so on stderr between requests."""
    deadline = time.monotonic() + wait
    while True:
        left = max(0.0, deadline - time.monotonic())
        answer: dict[str, Any] = api.call("GET", path, params={"wait": min(left, MAX_WAIT)})
        if answer["done"] or left <= MAX_WAIT:
            return answer
        if progress:
            click.echo(f"waiting for {progress}: {answer['status'] or 'not ended'}", err=True)


def json_value(text: str) -> Any:
    """A command-line value: JSON if it parses (``42``, ``"x"``, ``{"a": 1}``), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def keywords(pairs: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--kw")
        out[key] = json_value(value)
    return out


def clean(value: Any) -> str:
    """A value for a terminal: control characters (escapes) shown, never interpreted."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[clean(r.get(c)) if r.get(c) is not None else "-" for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def emit_page(
    api: Api, page: dict[str, Any], columns: Sequence[str],
    rows: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] = list,
) -> None:  # fmt: skip
    """A listing's page: ``--json`` as it came, else a table of ``rows(items)`` and, on stderr,
    the cursor of the next page."""

    def human(p: dict[str, Any]) -> None:
        table(rows(p["items"]), columns)
        if p["cursor"]:
            click.echo(f"more: --cursor {p['cursor']}", err=True)

    api.emit(page, human)


def fields(data: dict[str, Any], names: Sequence[str] | None = None) -> None:
    """One ``name: value`` line per field."""
    keys = names or list(data)
    width = max(len(k) for k in keys)
    for k in keys:
        v = data.get(k)
        click.echo(f"{k.ljust(width)}  {'-' if v is None else clean(v)}")
