"""Workflows every server and worker runs, whatever the app: ``perdure.ping``.

One step that returns its argument: a liveness probe that goes through the
whole engine (start, step, commit, result), and the workflow that
``perdure bench roundtrip --server`` times.
"""

from __future__ import annotations

import perdure


@perdure.step(name="perdure.echo")
async def echo(value: int) -> int:
    return value


@perdure.workflow(name="perdure.ping")
async def ping(value: int = 0) -> int:
    return await echo(value)
