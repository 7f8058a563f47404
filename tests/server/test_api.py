"""The /v1 API over real HTTP against a real server process."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from api.waiting import eventually_sync

PROBLEM = "application/problem+json"


def problem(r: httpx.Response, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["status"] == status
    assert body["detail"]
    detail: str = body["detail"]
    return detail


def every_page(api: httpx.Client, path: str, params: dict[str, str | int]) -> list[list[dict[str, Any]]]:
    """The items of each page of a listing, following its cursors to the end."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        page = api.get(path, params={**params, **({"cursor": cursor} if cursor else {})}).json()
        pages.append(page["items"])
        cursor = page["cursor"]
        if cursor is None:
            return pages


def test_start_waits_for_the_result_in_one_request(api: httpx.Client) -> None:
    r = api.post("/v1/workflows", params={"wait": 10}, json={"workflow": "twice", "args": [21]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["outcome"] == {
        "id": body["id"],
        "status": "completed",
        "done": True,
        "result": 42,
        "error": None,
    }


def test_start_is_idempotent_per_id_and_conflicts_with_other_arguments(api: httpx.Client) -> None:
    first = api.post("/v1/workflows", json={"workflow": "twice", "args": [1], "id": "order-1"})
    again = api.post("/v1/workflows", json={"workflow": "twice", "args": [1], "id": "order-1"})
    assert first.json()["id"] == again.json()["id"] == "order-1"
    detail = problem(api.post("/v1/workflows", json={"workflow": "twice", "args": [2], "id": "order-1"}), 409)
    assert "order-1" in detail
    r = api.get("/v1/workflows/order-1/result", params={"wait": 10}).json()
    assert (r["done"], r["result"]) == (True, 2)


def test_json_arguments_are_decoded_into_annotated_types(api: httpx.Client) -> None:
    start = {"workflow": "total", "args": [{"item": "pen", "qty": 3}], "kwargs": {"price": 4}}
    r = api.post("/v1/workflows", params={"wait": 10}, json=start)
    assert r.json()["outcome"]["result"] == {"item": "pen", "total": 12}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"workflow": "nope"}, "no workflow named 'nope'"),
        ({"workflow": "twice"}, "missing a required argument"),
        ({"workflow": "twice", "args": [1, 2]}, "too many positional arguments"),
        ({"workflow": "twice", "args": ["x"]}, "Expected `int`, got `str`"),
        ({"workflow": "twice", "args": [1], "id": "a/b"}, "must not contain '/'"),
        ({"workflow": "twice", "args": [1], "surprise": 1}, "surprise"),
        ({"workflow": 5}, "Expected `str`"),
        ([1, 2], "Expected `object`"),
    ],
)
def test_bad_start_requests_get_a_problem_that_says_what_is_wrong(
    api: httpx.Client, body: object, says: str
) -> None:
    assert says in problem(api.post("/v1/workflows", json=body), 400)


def test_malformed_json_oversized_bodies_and_unknown_routes_are_problems_too(api: httpx.Client) -> None:
    assert "truncated" in problem(api.post("/v1/workflows", content=b'{"workflow": '), 400)
    assert "nested too deeply" in problem(
        api.post("/v1/workflows", content=b"[" * 100_000 + b"]" * 100_000), 400
    )
    deep = {"workflow": "twice", "args": [1], "kwargs": {}, "id": "d"}
    body = b'{"topic": "t", "value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    api.post("/v1/workflows", json=deep).raise_for_status()
    assert "nested too deeply" in problem(api.post("/v1/workflows/d/messages", content=body), 400)
    problem(api.post("/v1/workflows", content=b" " * (5 * 1024 * 1024)), 413)
    form = api.post("/v1/workflows", data={"workflow": "twice"})
    assert "Content-Type: application/json" in problem(form, 415)
    text = api.post("/v1/workflows", content=b"{}", headers={"content-type": "text/plain"})
    problem(text, 415)
    bad_utf8 = api.post("/v1/workflows", content=b'{"workflow": "tw\xff\xfeice", "args": [1]}')
    assert "not valid UTF-8" in problem(bad_utf8, 400)
    problem(api.get("/v1/nothing/here"), 404)
    problem(api.delete("/v1/workflows"), 405)
    ghost = api.get("/v1/workflows/ghost")
    assert "no workflow with id 'ghost'" in problem(ghost, 404)
    assert (ghost.json()["title"], ghost.json()["error"], ghost.json()["type"]) == (
        "Not Found",
        "NotFound",
        "about:blank",
    )
    assert "unknown status" in problem(api.get("/v1/workflows", params={"status": "sleepy"}), 400)
    problem(api.get("/v1/workflows", params={"limit": 0}), 400)
    problem(api.get("/v1/workflows/x/result", params={"wait": "nan"}), 400)
    problem(api.get("/v1/workflows/x/result", params={"wait": 3600}), 400)


def test_a_failed_workflow_reports_its_error(api: httpx.Client) -> None:
    r = api.post("/v1/workflows", params={"wait": 10}, json={"workflow": "fails", "args": ["card declined"]})
    outcome = r.json()["outcome"]
    assert (outcome["status"], outcome["done"]) == ("failed", True)
    assert "card declined" in outcome["error"]["message"]


def test_messages_events_queries_and_cancel(api: httpx.Client) -> None:
    api.post("/v1/workflows", json={"workflow": "inbox", "args": [3], "id": "box"}).raise_for_status()
    stage = api.get("/v1/workflows/box/events/stage", params={"wait": 10}).json()
    assert stage == {"key": "stage", "found": True, "value": "listening"}
    assert api.get("/v1/workflows/box/events/never").json() == {"key": "never", "found": False, "value": None}
    for note in ("a", "b"):
        r = api.post("/v1/workflows/box/messages", json={"topic": "note", "value": note})
        assert r.status_code == 202, r.text
    eventually_sync(
        lambda: api.get("/v1/workflows/box/events/count").json()["value"], lambda v: v == 2, what="2 notes"
    )
    assert api.post("/v1/workflows/box/queries/seen", json={}).json() == {"result": ["a", "b"]}
    assert "has no query 'other'" in problem(api.post("/v1/workflows/box/queries/other", json={}), 400)
    pending = api.get("/v1/workflows/box/result").json()
    assert (pending["done"], pending["status"]) == (False, "waiting")
    cancelled = api.post("/v1/workflows/box/cancel").json()  # delivered at its wait: maybe not yet
    assert cancelled["id"] == "box"
    assert cancelled["status"] in {"waiting", "cancelled"}
    final = api.get("/v1/workflows/box/result", params={"wait": 10}).json()
    assert (final["done"], final["status"]) == (True, "cancelled")
    assert "takes no more messages" in problem(
        api.post("/v1/workflows/box/messages", json={"topic": "note", "value": "c"}), 409
    )
    assert "only parked" in problem(api.post("/v1/workflows/box/resume"), 409)
    history = api.get("/v1/workflows/box/history").json()
    assert len(history) >= 2  # two messages received, at least
    assert [e["position"] for e in history] == list(range(len(history)))
    assert api.get("/v1/workflows/box/runs").json() == []


def test_listing_filters_by_status_and_name_and_pages_with_a_cursor(api: httpx.Client) -> None:
    for i in range(5):
        api.post("/v1/workflows", params={"wait": 10}, json={"workflow": "twice", "args": [i], "id": f"t{i}"})
    api.post("/v1/workflows", params={"wait": 10}, json={"workflow": "fails", "args": ["x"], "id": "f0"})
    pages = every_page(api, "/v1/workflows", {"name": "twice", "status": "completed", "limit": 2})
    assert [[w["id"] for w in page] for page in pages] == [["t4", "t3"], ["t2", "t1"], ["t0"]]
    failed = api.get("/v1/workflows", params={"status": "failed"}).json()["items"]
    assert [w["id"] for w in failed] == ["f0"]


def test_schedules_are_created_paused_resumed_triggered_and_deleted(api: httpx.Client) -> None:
    spec = {"id": "nightly", "workflow": "twice", "args": [5], "cron": "0 3 * * *"}
    created = api.post("/v1/schedules", json=spec)
    assert created.status_code == 201, created.text
    assert created.json()["workflow"] == "twice"
    assert api.post("/v1/schedules", json=spec).status_code == 201  # the same again: found
    problem(api.post("/v1/schedules", json={**spec, "cron": "0 4 * * *"}), 409)
    assert "cron" in problem(api.post("/v1/schedules", json={**spec, "id": "bad", "cron": "never"}), 400)
    assert [s["id"] for s in api.get("/v1/schedules").json()] == ["nightly"]
    assert api.post("/v1/schedules/nightly/pause").json()["paused"] is True
    assert api.post("/v1/schedules/nightly/resume").json()["paused"] is False
    started = api.post("/v1/schedules/nightly/trigger").json()["workflow_id"]
    assert started.startswith("nightly@")
    assert api.get(f"/v1/workflows/{started}/result", params={"wait": 10}).json()["result"] == 10
    assert api.delete("/v1/schedules/nightly").status_code == 204
    problem(api.get("/v1/schedules/nightly"), 404)
    problem(api.delete("/v1/schedules/nightly"), 404)


def test_openapi_document_describes_the_routes_and_their_types(api: httpx.Client) -> None:
    doc = api.get("/v1/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    assert {"/v1/workflows", "/v1/workflows/{workflow_id}/result", "/v1/schedules"} <= set(doc["paths"])
    assert "WorkflowInfo" in doc["components"]["schemas"]
    assert "Problem" in doc["components"]["schemas"]


def test_metrics_count_instances_by_status_and_name_and_observe_steps(api: httpx.Client) -> None:
    api.post("/v1/workflows", params={"wait": 10}, json={"workflow": "twice", "args": [1]})
    api.post("/v1/workflows", params={"wait": 10}, json={"workflow": "fails", "args": ["x"]})
    text = api.get("/metrics").text
    assert 'perdure_instances{name="twice",status="completed"} 1.0' in text
    assert 'perdure_instances{name="fails",status="failed"} 1.0' in text
    assert "perdure_step_seconds_count 2.0" in text
    assert "perdure_steps_failed_total 1.0" in text
    assert "perdure_commit_ops_count" in text
    assert "perdure_claim_lag_seconds_bucket" in text
    assert api.get("/v1/health").json()["status"] == "ok"
