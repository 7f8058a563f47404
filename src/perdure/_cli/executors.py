"""``perdure executors``: the executor processes sharing a server's database."""

from __future__ import annotations

import click

from perdure._cli.client import Api, client, table

COLUMNS = ("id", "host", "pid", "alive", "shards", "lease_expires_at")


@click.command()
@client
def executors(api: Api) -> None:
    """The executors sharing the server's database: alive or not, and how many shards each
    leases (each claims the ready work of its shards)."""
    api.emit(api.call("GET", "/executors"), lambda rows: table(rows, COLUMNS))
