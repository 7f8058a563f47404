"""The /v1/actors routes over real HTTP against a real server process (actors: served_app.Counter)."""

from __future__ import annotations

from typing import Any

import httpx

from .test_api import every_page, problem


def invoke(api: httpx.Client, path: str, *args: Any, key: str | None = None, wait: float = 10) -> Any:
    headers = {"Idempotency-Key": key} if key else {}
    r = api.post(f"/v1/actors/{path}", params={"wait": wait}, json={"args": list(args)}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_invoke_answers_the_result_and_the_state_keeps_it(api: httpx.Client) -> None:
    first = invoke(api, "Counter/a/add", 2)
    assert (first["done"], first["status"], first["result"], first["error"]) == (True, "completed", 2, None)
    assert first["id"].startswith("Counter/a/")
    kw = api.post("/v1/actors/Counter/a/add", params={"wait": 10}, json={"kwargs": {"n": 3}}).json()
    assert kw["result"] == 5
    assert api.get("/v1/actors/Counter/a/state").json() == {"value": 5}
    info = api.get("/v1/actors/Counter/a").json()
    assert (info["type"], info["key"], info["status"], info["invocations"]) == ("Counter", "a", "idle", 2)
    # a method named like the GET route's last segment is still called by POST, with no body
    named = api.post("/v1/actors/Counter/a/state", params={"wait": 10})
    assert named.json()["result"] == "value is 5", named.text


def test_an_idempotency_key_runs_the_call_once_and_another_call_under_it_is_a_conflict(
    api: httpx.Client,
) -> None:
    once = [invoke(api, "Counter/idem/add", 5, key="req-1") for _ in range(3)]
    assert [o["result"] for o in once] == [5, 5, 5]
    assert {o["id"] for o in once} == {"Counter/idem/req-1"}
    assert api.get("/v1/actors/Counter/idem/state").json() == {"value": 5}  # one increment
    other = api.post("/v1/actors/Counter/idem/add", json={"args": [6]}, headers={"Idempotency-Key": "req-1"})
    assert "idempotency key 'req-1'" in problem(other, 409)
    assert api.get("/v1/actor-calls/Counter/idem/req-1").json()["result"] == 5


def test_a_method_that_raises_answers_its_error_and_keeps_no_change(api: httpx.Client) -> None:
    invoke(api, "Counter/f/add", 1)
    failed = invoke(api, "Counter/f/fail", "card declined")
    assert (failed["done"], failed["status"], failed["result"]) == (True, "failed", None)
    assert (failed["error"]["type"], failed["error"]["message"]) == ("ValueError", "card declined")
    assert api.get("/v1/actors/Counter/f/state").json() == {"value": 1}


def test_an_ephemeral_actor_answers_within_the_request_and_keeps_nothing(api: httpx.Client) -> None:
    for _ in range(2):  # a fresh object each time: its counter starts again
        answer = invoke(api, "Quote/eur/price", 4)
        assert answer == {"id": None, "done": True, "status": "completed", "result": "eur: 12 (call 1)",
                          "error": None}  # fmt: skip
    failed = invoke(api, "Quote/eur/price", -1)
    assert (failed["id"], failed["status"], failed["error"]["message"]) == (
        None,
        "failed",
        "negative quantity",
    )
    assert "drop wait=0" in problem(
        api.post("/v1/actors/Quote/eur/price", params={"wait": 0}, json={"args": [1]}), 400
    )
    keyed = api.post("/v1/actors/Quote/eur/price", json={"args": [1]}, headers={"Idempotency-Key": "k"})
    assert "drop an Idempotency-Key" in problem(keyed, 400)
    assert "do not fit" in problem(api.post("/v1/actors/Quote/eur/price", json={"args": ["four"]}), 400)
    problem(api.get("/v1/actors/Quote/eur"), 404)  # nothing was recorded


def test_fire_and_forget_then_the_oplog_and_the_call_show_it(api: httpx.Client) -> None:
    queued = invoke(api, "Counter/q/add", 7, wait=0)
    call_id = queued["id"]
    ended = api.get(f"/v1/actor-calls/{call_id}", params={"wait": 10}).json()
    assert (ended["id"], ended["done"], ended["result"]) == (call_id, True, 7)
    invoke(api, "Counter/q/fail", "no")
    oplog = api.get("/v1/actors/Counter/q/oplog").json()
    assert [(e["id"], e["method"], e["status"]) for e in oplog["items"]] == [
        (call_id, "add", "completed"),
        (oplog["items"][1]["id"], "fail", "failed"),
    ]
    assert oplog["items"][0]["arguments"] == {"n": 7}
    assert oplog["items"][1]["error"]["message"] == "no"
    page = api.get("/v1/actors/Counter/q/oplog", params={"limit": 1}).json()
    assert [e["id"] for e in page["items"]] == [call_id]
    rest = api.get("/v1/actors/Counter/q/oplog", params={"limit": 1, "cursor": page["cursor"]}).json()
    assert ([e["method"] for e in rest["items"]], rest["cursor"]) == (["fail"], None)


def test_a_slow_call_answers_not_done_within_the_wait_and_a_busy_actor_is_not_deleted(
    api: httpx.Client,
) -> None:
    stalled = invoke(api, "Counter/busy/stall", wait=0.2)  # waits a day: never ends in the test
    assert (stalled["done"], stalled["status"]) == (False, None)
    again = api.get(f"/v1/actor-calls/{stalled['id']}", params={"wait": 0.1}).json()
    assert again == stalled
    assert "has calls in its inbox" in problem(api.delete("/v1/actors/Counter/busy"), 409)
    busy = api.get("/v1/actors", params={"status": "busy"}).json()["items"]
    assert [(a["key"], a["status"]) for a in busy] == [("busy", "busy")]
    invoke(api, "Counter/gone/add", 1)
    assert api.delete("/v1/actors/Counter/gone").status_code == 204
    assert "no actor 'Counter/gone'" in problem(api.get("/v1/actors/Counter/gone"), 404)
    problem(api.get("/v1/actors/Counter/gone/state"), 404)
    problem(api.delete("/v1/actors/Counter/gone"), 404)


def test_listing_filters_by_type_key_prefix_and_status_and_pages_with_a_cursor(api: httpx.Client) -> None:
    for key in ("u-3", "u-1", "u-2", "v-1"):
        invoke(api, f"Counter/{key}/add", 1)
    pages = every_page(
        api, "/v1/actors", {"type": "Counter", "key_prefix": "u-", "status": "idle", "limit": 2}
    )
    assert [[a["key"] for a in page] for page in pages] == [["u-1", "u-2"], ["u-3"]]
    assert [a["key"] for a in api.get("/v1/actors").json()["items"]] == ["u-1", "u-2", "u-3", "v-1"]
    assert api.get("/v1/actors", params={"status": "busy"}).json() == {"items": [], "cursor": None}


BAD_CALLS: list[tuple[str, object, str]] = [
    ("Nope/a/add", {"args": [1]}, "no actor named 'Nope'"),
    ("Counter/a/nope", {}, "has no public method 'nope' (it has: add, collect, fail, stall, state)"),
    ("Counter/a/_private", {}, "has no public method '_private'"),
    ("Counter/a/__init__", {}, "has no public method '__init__'"),
    (
        "Counter/a/add",
        {"args": ["x"]},
        "arguments of actor method 'Counter.add' do not fit its annotations: Expected `int`, got `str`",
    ),
    (
        "Counter/a/add",
        {"args": [1, 2]},
        "wrong arguments for actor method 'Counter.add'(n: 'int') -> 'int': too many positional arguments",
    ),
    ("Counter/a/add", {}, "missing a required argument"),
    ("Counter/a/add", {"args": [1], "surprise": True}, "surprise"),
    ("Counter/a/add", {"kwargs": {"idempotency_key": "k"}}, "Idempotency-Key header"),
    ("Counter/a/add", [1], "Expected `object | null`, got `array`"),
]


def test_bad_calls_get_a_problem_that_says_what_is_wrong(api: httpx.Client) -> None:
    for path, body, says in BAD_CALLS:  # one server for all: each start costs a process
        assert says in problem(api.post(f"/v1/actors/{path}", json=body), 400), (path, body)
    assert api.get("/v1/actors").json()["items"] == []  # none of them made an actor


def test_malformed_input_and_unknown_actors_are_problems(api: httpx.Client) -> None:
    assert "truncated" in problem(api.post("/v1/actors/Counter/a/add", content=b'{"args": [1'), 400)
    assert "malformed" in problem(api.post("/v1/actors/Counter/a/add", content=b"{bad"), 400)
    bad_key = api.post("/v1/actors/Counter/a/add", json={"args": [1]}, headers={"Idempotency-Key": "x" * 300})
    assert "idempotency key" in problem(bad_key, 400)
    assert "Invalid enum value 'sleepy'" in problem(api.get("/v1/actors", params={"status": "sleepy"}), 400)
    assert "no actor named 'Nope'" in problem(api.get("/v1/actors", params={"type": "Nope"}), 400)
    assert "invalid cursor" in problem(api.get("/v1/actors", params={"cursor": "junk"}), 400)
    problem(api.get("/v1/actors", params={"limit": 0}), 400)
    problem(api.get("/v1/actors/Counter/a/oplog", params={"limit": 5000}), 400)
    assert "no actor 'Counter/never'" in problem(api.get("/v1/actors/Counter/never/oplog"), 404)
    assert "not an actor call id" in problem(api.get("/v1/actor-calls/just-one-part"), 400)
    assert "no actor call 'Counter/a/none'" in problem(api.get("/v1/actor-calls/Counter/a/none"), 404)
    problem(api.post("/v1/actors/Counter/a/add", params={"wait": 3600}, json={"args": [1]}), 400)


def send(api: httpx.Client, actor: str, body: object) -> httpx.Response:
    return api.post(f"/v1/actors/{actor}/messages", json=body)


def test_messages_wait_in_the_mailbox_and_wake_a_call_waiting_for_them(api: httpx.Client) -> None:
    assert send(api, "Counter/mb", {"topic": "t", "value": 1}).status_code == 202
    for _ in range(2):  # the same key: delivered once
        assert (
            send(api, "Counter/mb", {"topic": "t", "value": {"n": 2}, "idempotency_key": "k"}).status_code
            == 202
        )
    info = api.get("/v1/actors/Counter/mb").json()
    assert (info["status"], info["invocations"], info["messages"]) == ("idle", 0, 2)
    assert invoke(api, "Counter/mb/collect", "t", 2)["result"] == [1, {"n": 2}]
    waiting = invoke(api, "Counter/mb/collect", "later", 1, wait=0)
    assert send(api, "Counter/mb", {"topic": "later", "value": "woken"}).status_code == 202
    ended = api.get(f"/v1/actor-calls/{waiting['id']}", params={"wait": 10}).json()
    assert (ended["done"], ended["result"]) == (True, ["woken"])
    assert api.get("/v1/actors/Counter/mb").json()["messages"] == 0


BAD_MESSAGES: list[tuple[str, object, str]] = [
    ("Nope/k", {"topic": "t"}, "no actor named 'Nope'"),
    ("Counter/k", {}, "missing required field `topic`"),
    ("Counter/k", {"topic": ""}, "topic must not be empty"),
    ("Counter/k", {"topic": "t", "surprise": 1}, "surprise"),
    ("Counter/k", {"topic": "t", "idempotency_key": "x" * 300}, "idempotency key"),
]


def test_bad_messages_get_a_problem_and_make_no_actor(api: httpx.Client) -> None:
    for actor, body, says in BAD_MESSAGES:
        assert says in problem(send(api, actor, body), 400), (actor, body)
    nan = api.post("/v1/actors/Counter/k/messages", content=b'{"topic": "t", "value": NaN}')
    problem(nan, 400)
    assert api.get("/v1/actors").json()["items"] == []


def test_metrics_count_resident_actors_activations_and_evictions(api: httpx.Client) -> None:
    for key in ("m1", "m2", "m1"):
        invoke(api, f"Counter/{key}/add", 1)
    text = api.get("/metrics").text
    assert "# TYPE perdure_actors_resident gauge" in text
    assert "perdure_actors_resident 2.0" in text
    assert "# TYPE perdure_executor_shards gauge" in text
    assert "perdure_executor_shards 64.0" in text  # the only executor leases every shard
    assert "perdure_actor_activations_total 2.0" in text  # the third call found m1 in memory
    assert "perdure_actor_evictions_total 0.0" in text
    assert 'name="Counter.add"' not in text  # actor calls are not counted as workflow instances
