"""``perdure migrate``: create or upgrade a database's schema, without running anything."""

from __future__ import annotations

import asyncio

import click

import perdure


@click.command()
@click.option(
    "--db",
    required=True,
    envvar="PERDURE_DB",
    help="sqlite:///path/to/file.db or postgresql://user@host:5432/database [env PERDURE_DB]",
)
def migrate(db: str) -> None:
    """Create the database's schema, or upgrade it to this perdure's; servers and workers also do
    this when they start. A database of a newer perdure, or not perdure's, is refused."""
    try:
        version = asyncio.run(perdure.migrate(db))
    except perdure.PerdureError as exc:
        click.echo(f"Error: cannot migrate the database: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    click.echo(f"the database is at perdure schema version {version}")
