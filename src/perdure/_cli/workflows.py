"""``perdure workflow ...``: start, inspect and steer workflows through a server's /v1 API.

Arguments on the command line are JSON when they parse as JSON (``42``,
``'"42"'``, ``'{"qty": 2}'``) and plain strings otherwise (``alice``).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import click

from perdure._cli.client import (
    MAX_WAIT,
    Api,
    ServerError,
    client,
    emit_page,
    fields,
    json_value,
    keywords,
    long_poll,
    table,
)

WORKFLOW_COLUMNS = ("id", "name", "status", "created_at", "updated_at")


def _id(workflow_id: str) -> str:
    return quote(workflow_id, safe="")


@click.group()
def workflow() -> None:
    """Start, list, inspect and steer workflows on a perdure server."""


def wait_result(api: Api, workflow_id: str, wait: float, *, progress: bool) -> dict[str, Any]:
    """Long-poll the result for up to ``wait`` seconds."""
    return long_poll(
        api, f"/workflows/{_id(workflow_id)}/result", wait, progress=workflow_id if progress else None
    )


def show_outcome(api: Api, outcome: dict[str, Any], what: str = "workflow") -> None:
    """Print a result; a failed, cancelled or unfinished workflow (or actor call) exits non-zero."""
    api.emit(outcome, lambda o: click.echo(json_text(o["result"])) if o["status"] == "completed" else None)
    if outcome["status"] == "completed":
        return
    if not outcome["done"]:
        still = f"still {outcome['status']}" if outcome["status"] else "not ended"
        raise ServerError(f"{what} {outcome['id']} is {still}; ask again later", exit_code=8)
    err = outcome.get("error")
    why = f": {error_text(err)}" if err else ""
    raise ServerError(f"{what} {outcome['id']} {outcome['status']}{why}", exit_code=7)


def error_text(err: dict[str, Any]) -> str:
    return f"{err['type']}: {err['message']}"


def json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


@workflow.command()
@click.argument("name")
@click.argument("args", nargs=-1)
@click.option("--kw", "kw", multiple=True, metavar="KEY=VALUE", help="a keyword argument (repeatable)")
@click.option("--id", "workflow_id", default=None, help="workflow id; starting it again finds it again")
@click.option("--execution-timeout", type=click.FloatRange(0, min_open=True), help="seconds before it fails")
@click.option(
    "--wait", type=click.FloatRange(0), default=None, help="also wait this many seconds for the result"
)
@client
def start(
    api: Api, name: str, args: tuple[str, ...], kw: tuple[str, ...], workflow_id: str | None,
    execution_timeout: float | None, wait: float | None,
) -> None:  # fmt: skip
    """Start workflow NAME with ARGS (JSON, or plain strings)."""
    body = {"workflow": name, "args": [json_value(a) for a in args], "kwargs": keywords(kw), "id": workflow_id,
            "execution_timeout": execution_timeout}  # fmt: skip
    started = api.call("POST", "/workflows", body={k: v for k, v in body.items() if v is not None})
    if wait is None:
        api.emit(started, lambda s: click.echo(s["id"]))
        return
    if not api.as_json:
        click.echo(f"started {started['id']}", err=True)
    show_outcome(api, wait_result(api, started["id"], wait, progress=not api.as_json))


@workflow.command("list")
@click.option("--status", default=None, help="only this status (pending, running, waiting, completed, ...)")
@click.option("--name", default=None, help="only this workflow name")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--cursor", default=None, help="the cursor a previous page printed")
@client
def list_(api: Api, status: str | None, name: str | None, limit: int, cursor: str | None) -> None:
    """Workflows, newest first."""
    page = api.call(
        "GET", "/workflows", params={"status": status, "name": name, "limit": limit, "cursor": cursor}
    )
    emit_page(api, page, WORKFLOW_COLUMNS)


@workflow.command()
@click.argument("workflow_id")
@client
def show(api: Api, workflow_id: str) -> None:
    """One workflow: status, times, error, park reason."""
    info = api.call("GET", f"/workflows/{_id(workflow_id)}")

    def human(i: dict[str, Any]) -> None:
        err = i.get("error")
        fields({**i, "error": error_text(err) if err else None})

    api.emit(info, human)


@workflow.command()
@click.argument("workflow_id")
@client
def history(api: Api, workflow_id: str) -> None:
    """The journal: one line per recorded operation."""
    entries = api.call("GET", f"/workflows/{_id(workflow_id)}/history")

    def human(es: list[dict[str, Any]]) -> None:
        rows = [{**e, "outcome": e["result"] if e["ok"] else error_text(e["error"])} for e in es]
        table(rows, ("position", "kind", "name", "attempts", "outcome", "ended_at"))

    api.emit(entries, human)


@workflow.command()
@click.argument("workflow_id")
@client
def runs(api: Api, workflow_id: str) -> None:
    """Earlier runs of a workflow that continued as new, oldest first."""
    earlier = api.call("GET", f"/workflows/{_id(workflow_id)}/runs")
    api.emit(earlier, lambda rs: table(rs, ("run", "steps", "input", "ended_at")))


@workflow.command()
@click.argument("workflow_id")
@click.argument("topic")
@click.argument("value")
@click.option("--key", default=None, help="idempotency key: sending again with it delivers once")
@client
def send(api: Api, workflow_id: str, topic: str, value: str, key: str | None) -> None:
    """Send VALUE (JSON, or a plain string) on TOPIC; the workflow gets it from perdure.recv(TOPIC)."""
    post_message(api, f"/workflows/{_id(workflow_id)}", workflow_id, topic, value, key)


def post_message(api: Api, path: str, target: str, topic: str, value: str, key: str | None) -> None:
    """POST a message to ``path``/messages (a workflow's or an actor's) and say so."""
    body = {"topic": topic, "value": json_value(value), "idempotency_key": key}
    api.call("POST", f"{path}/messages", body=body)
    api.emit({"sent": True}, lambda _: click.echo(f"sent to {target} on {topic}"))


@workflow.command()
@click.argument("workflow_id")
@click.argument("name")
@click.argument("args", nargs=-1)
@client
def query(api: Api, workflow_id: str, name: str, args: tuple[str, ...]) -> None:
    """Ask the workflow's query handler NAME; it never changes the workflow."""
    answer = api.call("POST", f"/workflows/{_id(workflow_id)}/queries/{quote(name, safe='')}",
                      body={"args": [json_value(a) for a in args]})  # fmt: skip
    api.emit(answer, lambda a: click.echo(json_text(a["result"])))


@workflow.command()
@click.argument("workflow_id")
@click.argument("key")
@click.option("--wait", type=click.FloatRange(0, MAX_WAIT), default=0.0, help="seconds to wait for it")
@client
def event(api: Api, workflow_id: str, key: str, wait: float) -> None:
    """The value the workflow published under KEY with perdure.set_event."""
    found = api.call(
        "GET", f"/workflows/{_id(workflow_id)}/events/{quote(key, safe='')}", params={"wait": wait}
    )
    api.emit(found, lambda f: click.echo(json_text(f["value"]) if f["found"] else "(not set)"))


def _action(action: str, doc: str) -> None:
    """``perdure workflow ACTION ID``: POST /workflows/ID/ACTION; prints the status after it."""

    @workflow.command(action, help=doc)
    @click.argument("workflow_id")
    @client
    def command(api: Api, workflow_id: str) -> None:
        after = api.call("POST", f"/workflows/{_id(workflow_id)}/{action}")
        api.emit(after, lambda a: click.echo(f"{workflow_id}: {a['status']}"))


_action("cancel", "Cancel: at once if it waits, at its next durable operation if it runs.")
_action("resume", "Run a parked workflow again, after fixing what parked it.")


@workflow.command()
@click.argument("workflow_id")
@click.option("--wait", type=click.FloatRange(0), default=30.0, show_default=True, help="seconds to wait")
@client
def result(api: Api, workflow_id: str, wait: float) -> None:
    """Wait for the workflow's result and print it; exit 7 if it failed or was cancelled, 8 if
    it is still going."""
    show_outcome(api, wait_result(api, workflow_id, wait, progress=not api.as_json))
