"""schemathesis against the served /v1/openapi.json: no 5xx, and answers as documented.

Bounded: a few examples per operation, so it stays a smoke test of every route
against generated (and deliberately malformed) input rather than a soak.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import Server

TOKEN = "fuzz-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}", "--token", TOKEN)
    with server.client(TOKEN) as api:  # something to find, so not every path is a 404
        api.post("/v1/workflows", json={"workflow": "twice", "args": [1], "id": "known"}).raise_for_status()
        api.post("/v1/schedules", json={"id": "known", "workflow": "twice", "args": [1], "every": 3600})
        api.post("/v1/actors/Counter/known/add", json={"args": [1]}).raise_for_status()
    yield server
    server.stop()
    if server.proc.stderr is not None:
        server.proc.stderr.close()


def test_every_route_answers_generated_input_as_documented_without_server_errors(served: Server) -> None:
    schema = schemathesis.openapi.from_url(f"{served.url}/v1/openapi.json", headers=AUTH)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), f"the served OpenAPI document has an invalid operation: {result}"
        operations.append(result.ok())
    assert len(operations) >= 25  # 19 for workflows, schedules and health; 6 for actors
    calls = 0
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            nonlocal calls
            calls += 1
            case.call_and_validate(headers=AUTH, checks=CHECKS)

        check()
    assert calls >= 5 * len(operations)
