"""``perdure migrate``: create or upgrade a database's schema, without running anything."""

from __future__ import annotations

import asyncio

import click

import perdure


async def _migrate(db: str) -> str:
    engine = perdure.Engine(db, executor=False)  # opening migrates; no executor claims work
    await engine.open()
    await engine.close()
    return engine.url


@click.command()
@click.option(
    "--db", required=True, envvar="PERDURE_DB", help="database URL (sqlite:///path.db) [env PERDURE_DB]"
)
def migrate(db: str) -> None:
    """Create the database's schema, or upgrade it to this perdure's; servers and workers also do
    this when they start. A database of a newer perdure, or not perdure's, is refused."""
    try:
        url = asyncio.run(_migrate(db))
    except perdure.PerdureError as exc:
        raise click.ClickException(f"cannot migrate {db!r}: {exc}") from None
    click.echo(f"{url}: schema up to date")
