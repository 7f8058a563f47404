"""The ``perdure`` command: one click group; each verb lives in its own module."""

from __future__ import annotations

import asyncio

import click

import perdure
from perdure._cli.bench import bench


@click.group(name="perdure", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(perdure.__version__, prog_name="perdure")
def cli() -> None:
    """perdure: durable execution for Python on SQLite or PostgreSQL."""


@cli.command()
@click.option(
    "--db",
    "url",
    metavar="URL",
    required=True,
    help="sqlite:///path/to/file.db or postgresql://user@host:5432/database",
)
def migrate(url: str) -> None:
    """Create or upgrade the database schema, then exit (executors also do it when they start)."""
    try:
        version = asyncio.run(perdure.migrate(url))
    except perdure.PerdureError as exc:
        click.echo(f"Error: {exc}", err=True)
        raise SystemExit(exc.exit_code) from None
    click.echo(f"the database is at perdure schema version {version}")


cli.add_command(bench)


def main() -> None:
    """Entry point of the ``perdure`` script and of ``python -m perdure._cli.main``."""
    cli.main(prog_name="perdure")


if __name__ == "__main__":
    main()
