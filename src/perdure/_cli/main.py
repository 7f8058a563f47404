"""The ``perdure`` command: one click group; each verb lives in its own module."""

from __future__ import annotations

import click

import perdure
from perdure._cli.actors import actor
from perdure._cli.bench import bench
from perdure._cli.executors import executors
from perdure._cli.migrate import migrate
from perdure._cli.schedules import schedule
from perdure._cli.serve import server, worker
from perdure._cli.workflows import workflow


@click.group(name="perdure", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(perdure.__version__, prog_name="perdure")
def cli() -> None:
    """perdure: durable execution for Python on SQLite or PostgreSQL."""


cli.add_command(bench)
cli.add_command(server)
cli.add_command(worker)
cli.add_command(workflow)
cli.add_command(actor)
cli.add_command(schedule)
cli.add_command(migrate)
cli.add_command(executors)


def main() -> None:
    """Entry point of the ``perdure`` script and of ``python -m perdure._cli.main``."""
    cli.main(prog_name="perdure")


if __name__ == "__main__":
    main()
