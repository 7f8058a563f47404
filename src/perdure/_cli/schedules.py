"""``perdure schedule ...``: cron and interval schedules on a server."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import click

from perdure._cli.client import Api, client, fields, json_value, keywords, table

COLUMNS = ("id", "workflow", "cron", "every", "timezone", "paused", "next_at", "last_instance")


def _path(schedule_id: str, action: str = "") -> str:
    return f"/schedules/{quote(schedule_id, safe='')}{action}"


@click.group()
def schedule() -> None:
    """Create, list and steer schedules that start workflows on a cron or an interval."""


@schedule.command()
@click.argument("schedule_id")
@click.argument("workflow")
@click.argument("args", nargs=-1)
@click.option("--kw", "kw", multiple=True, metavar="KEY=VALUE", help="a keyword argument (repeatable)")
@click.option("--cron", default=None, help="cron expression, e.g. '0 3 * * *'")
@click.option("--every", type=click.FloatRange(0, min_open=True), default=None, help="seconds between ticks")
@click.option("--timezone", default="UTC", show_default=True, help="time zone of the cron expression")
@click.option(
    "--overlap", type=click.Choice(["skip", "buffer_one", "allow_all"]), default="skip", show_default=True
)
@click.option("--catchup", type=click.Choice(["latest", "all", "none"]), default="latest", show_default=True)
@client
def create(
    api: Api, schedule_id: str, workflow: str, args: tuple[str, ...], kw: tuple[str, ...], cron: str | None,
    every: float | None, timezone: str, overlap: str, catchup: str,
) -> None:  # fmt: skip
    """Start WORKFLOW with ARGS on every tick; each tick runs as workflow '<SCHEDULE_ID>@<tick time>'."""
    body = {"id": schedule_id, "workflow": workflow, "args": [json_value(a) for a in args], "kwargs": keywords(kw),
            "cron": cron, "every": every, "timezone": timezone, "overlap": overlap, "catchup": catchup}  # fmt: skip
    created = api.call("POST", "/schedules", body=body)
    api.emit(created, lambda c: click.echo(f"schedule {c['id']}: next tick at {c['next_at']}"))


@schedule.command("list")
@client
def list_(api: Api) -> None:
    """All schedules."""
    api.emit(api.call("GET", "/schedules"), lambda rows: table(rows, COLUMNS))


@schedule.command()
@click.argument("schedule_id")
@client
def show(api: Api, schedule_id: str) -> None:
    """One schedule."""
    api.emit(api.call("GET", _path(schedule_id)), fields)


def _action(action: str, say: str, doc: str) -> None:
    """``perdure schedule ACTION ID``: POST /schedules/ID/ACTION, then ``say`` what came back."""

    @schedule.command(action, help=doc)
    @click.argument("schedule_id")
    @client
    def command(api: Api, schedule_id: str) -> None:
        after: dict[str, Any] = api.call("POST", _path(schedule_id, f"/{action}"))
        api.emit(after, lambda a: click.echo(say.format(**a)))


for _args in (
    ("pause", "schedule {id}: paused", "Start no ticks until resumed (the ticks in between are skipped)."),
    ("resume", "schedule {id}: next tick at {next_at}", "Start ticks again, from the next one."),
    ("trigger", "{workflow_id}", "Start the schedule's workflow now, besides its ticks; prints its id."),
):
    _action(*_args)


@schedule.command()
@click.argument("schedule_id")
@client
def delete(api: Api, schedule_id: str) -> None:
    """Delete the schedule; the workflows it started are left alone."""
    api.call("DELETE", _path(schedule_id))
    api.emit({"deleted": schedule_id}, lambda _: click.echo(f"schedule {schedule_id}: deleted"))
