"""``perdure actor ...``: call, message, list, inspect and delete durable actors through a server's /v1 API.

Method arguments on the command line are JSON when they parse as JSON and plain
strings otherwise, as for ``perdure workflow start``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from perdure._cli.client import MAX_WAIT, Api, client, emit_page, fields, json_value, keywords, long_poll
from perdure._cli.workflows import error_text, json_text, post_message, show_outcome

ACTOR_COLUMNS = ("type", "key", "status", "invocations", "messages", "state_version", "updated_at")
OPLOG_COLUMNS = ("call", "method", "status", "arguments", "outcome", "enqueued_at", "ended_at", "state_size")


def _path(actor_type: str, key: str, rest: str = "") -> str:
    return f"/actors/{quote(actor_type, safe='')}/{quote(key, safe='')}{rest}"


@click.group()
def actor() -> None:
    """Call, message, list, inspect and delete durable actors on a perdure server."""


@actor.command()
@click.argument("actor_type", metavar="TYPE")
@click.argument("key")
@click.argument("method")
@click.argument("args", nargs=-1)
@click.option("--kw", "kw", multiple=True, metavar="KEY=VALUE", help="a keyword argument (repeatable)")
@click.option(
    "--idempotency-key", default=None, help="the same key again runs the call once and prints its outcome"
)
@click.option("--enqueue", is_flag=True, help="only put the call in the actor's inbox; print its id")
@click.option("--wait", type=click.FloatRange(0), default=30.0, show_default=True, help="seconds to wait")
@client
def invoke(
    api: Api, actor_type: str, key: str, method: str, args: tuple[str, ...], kw: tuple[str, ...],
    idempotency_key: str | None, enqueue: bool, wait: float,
) -> None:  # fmt: skip
    """Call METHOD of actor TYPE/KEY with ARGS (JSON, or plain strings) and print its result;
    exit 7 if the method raised, 8 if the call has not ended within --wait."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
    body = {"args": [json_value(a) for a in args], "kwargs": keywords(kw)}
    first = min(0.0 if enqueue else wait, MAX_WAIT)
    call = api.call("POST", _path(actor_type, key, f"/{quote(method, safe='')}"), body=body,
                    params={"wait": first}, headers=headers)  # fmt: skip
    if enqueue:
        api.emit(call, lambda c: click.echo(c["id"]))
        return
    if not call["done"] and wait > first:
        progress = None if api.as_json else call["id"]
        call = long_poll(api, f"/actor-calls/{quote(call['id'], safe='/')}", wait - first, progress=progress)
    show_outcome(api, call, what="actor call")


@actor.command()
@click.argument("actor_type", metavar="TYPE")
@click.argument("key")
@click.argument("topic")
@click.argument("value")
@click.option(
    "--key", "idempotency_key", default=None, help="idempotency key: sending again with it delivers once"
)
@client
def send(api: Api, actor_type: str, key: str, topic: str, value: str, idempotency_key: str | None) -> None:
    """Put VALUE (JSON, or a plain string) in the mailbox of actor TYPE/KEY on TOPIC; a call of
    the actor gets it from perdure.recv(TOPIC). An actor never called exists from then on."""
    post_message(api, _path(actor_type, key), f"{actor_type}/{key}", topic, value, idempotency_key)


@actor.command("list")
@click.option("--type", "actor_type", default=None, help="only actors of this type")
@click.option("--key-prefix", default=None, help="only keys that start with this")
@click.option(
    "--status", type=click.Choice(["idle", "busy"]), default=None, help="busy: a call is in its inbox"
)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--cursor", default=None, help="the cursor a previous page printed")
@client
def list_(
    api: Api,
    actor_type: str | None,
    key_prefix: str | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> None:
    """Actors, by type and key."""
    params = {
        "type": actor_type,
        "key_prefix": key_prefix,
        "status": status,
        "limit": limit,
        "cursor": cursor,
    }
    emit_page(api, api.call("GET", "/actors", params=params), ACTOR_COLUMNS)


@actor.command()
@click.argument("actor_type", metavar="TYPE")
@click.argument("key")
@client
def get(api: Api, actor_type: str, key: str) -> None:
    """One actor: status, calls ended so far, messages waiting in its mailbox, state version, times."""
    api.emit(api.call("GET", _path(actor_type, key)), fields)


@actor.command()
@click.argument("actor_type", metavar="TYPE")
@click.argument("key")
@client
def state(api: Api, actor_type: str, key: str) -> None:
    """The actor's attributes as saved after its last call."""

    def human(s: dict[str, Any]) -> None:
        if s:
            fields(s)
        else:
            click.echo("(no state saved yet)")

    api.emit(api.call("GET", _path(actor_type, key, "/state")), human)


@actor.command()
@click.argument("actor_type", metavar="TYPE")
@click.argument("key")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 1000))
@click.option("--cursor", default=None, help="the cursor a previous page printed")
@client
def oplog(api: Api, actor_type: str, key: str, limit: int, cursor: str | None) -> None:
    """The actor's calls, oldest first: method, arguments, outcome, times, state size."""
    page = api.call("GET", _path(actor_type, key, "/oplog"), params={"limit": limit, "cursor": cursor})

    def rows(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**e, "call": e["id"].split("/", 2)[2],  # the id without the actor's type/key
             "outcome": error_text(e["error"]) if e["error"] else json_text(e["result"])}
            for e in entries
        ]  # fmt: skip

    emit_page(api, page, OPLOG_COLUMNS, rows)


@actor.command()
@click.argument("actor_type", metavar="TYPE")
@click.argument("key")
@client
def delete(api: Api, actor_type: str, key: str) -> None:
    """Delete the actor, its state and its oplog (refused while a call is in its inbox)."""
    api.call("DELETE", _path(actor_type, key))
    api.emit({"deleted": f"{actor_type}/{key}"}, lambda _: click.echo(f"actor {actor_type}/{key}: deleted"))
