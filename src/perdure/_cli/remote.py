"""W3 over HTTP: time start-and-wait requests against a running server, from the client."""

from __future__ import annotations

import statistics
import time

import click

from perdure._cli.client import Api
from perdure._cli.workloads import Figures, quantile

PING = {"workflow": "perdure.ping", "args": [1]}


def roundtrip_http(server: str, token: str | None, iterations: int) -> tuple[Figures, str]:
    """Figures of ``iterations`` start-and-wait requests in a row, and the server's database URL."""
    api = Api(server, token, as_json=True)
    try:
        database: str = api.call("GET", "/health")["database"]
        lat: list[float] = []
        for i in range(5 + iterations):
            t = time.perf_counter()
            started = api.call("POST", "/workflows", body=PING, params={"wait": 30})
            elapsed = time.perf_counter() - t
            if started["outcome"]["result"] != 1:
                raise click.ClickException(f"perdure.ping answered {started['outcome']!r}, not 1")
            if i >= 5:  # the first five warm up
                lat.append(elapsed)
    finally:
        api.http.close()
    figures = {
        "p50_ms": round(quantile(lat, 0.5) * 1e3, 3),
        "p99_ms": round(quantile(lat, 0.99) * 1e3, 3),
        "mean_ms": round(statistics.fmean(lat) * 1e3, 3),
    }
    return figures, database
