"""The real ``perdure`` CLI against a real server: verbs, --json, tables, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from api.waiting import eventually_sync

from .conftest import Server, run_cli


def cli(server: Server, *args: str, code: int = 0) -> subprocess.CompletedProcess[str]:
    proc = run_cli(*args, PERDURE_SERVER=server.url)
    assert proc.returncode == code, (
        f"perdure {' '.join(args)}: exit {proc.returncode}\n{proc.stdout}{proc.stderr}"
    )
    assert "Traceback" not in proc.stderr
    return proc


def as_json(server: Server, *args: str) -> Any:
    return json.loads(cli(server, *args, "--json").stdout)


def test_workflow_verbs_start_inspect_and_steer(server: Server) -> None:
    assert cli(server, "workflow", "start", "twice", "21", "--wait", "10").stdout.strip() == "42"
    assert cli(server, "workflow", "start", "inbox", "2", "--id", "box").stdout.strip() == "box"
    assert as_json(server, "workflow", "event", "box", "stage", "--wait", "10")["value"] == "listening"
    cli(server, "workflow", "send", "box", "note", "hello")  # not JSON: sent as the string
    cli(server, "workflow", "send", "box", "note", '"42"', "--key", "k1")
    result = as_json(server, "workflow", "result", "box", "--wait", "10")
    assert (result["status"], result["result"]) == ("completed", ["hello", "42"])
    assert cli(server, "workflow", "query", "box", "seen").stdout.strip() == '["hello", "42"]'
    listed = cli(server, "workflow", "list", "--name", "inbox").stdout.splitlines()
    assert listed[0].split() == ["ID", "NAME", "STATUS", "CREATED_AT", "UPDATED_AT"]
    assert listed[1].split()[:3] == ["box", "inbox", "completed"]
    page = as_json(server, "workflow", "list", "--limit", "1")
    assert len(page["items"]) == 1
    assert page["cursor"]
    shown = cli(server, "workflow", "show", "box").stdout
    assert "status" in shown
    assert "completed" in shown
    assert as_json(server, "workflow", "runs", "box") == []
    assert cli(server, "workflow", "runs", "box").stdout.strip() == "(none)"
    history = as_json(server, "workflow", "history", "box")
    assert [e["position"] for e in history] == list(range(len(history)))


def test_cancel_and_a_failed_result_exit_non_zero(server: Server) -> None:
    cli(server, "workflow", "start", "inbox", "5", "--id", "c1")
    assert as_json(server, "workflow", "cancel", "c1")["id"] == "c1"
    out = cli(server, "workflow", "result", "c1", "--wait", "10", code=7)
    assert "cancelled" in out.stderr
    out = cli(server, "workflow", "start", "fails", "card declined", "--wait", "10", code=7)
    assert "card declined" in out.stderr
    cli(server, "workflow", "start", "inbox", "5", "--id", "slowpoke")
    assert "still" in cli(server, "workflow", "result", "slowpoke", "--wait", "0", code=8).stderr


def test_problems_become_one_line_errors_with_exit_codes(server: Server) -> None:
    assert "no workflow with id 'ghost'" in cli(server, "workflow", "show", "ghost", code=3).stderr
    assert "no workflow named 'nope'" in cli(server, "workflow", "start", "nope", code=2).stderr
    assert "Expected `int`" in cli(server, "workflow", "start", "twice", "x", code=2).stderr
    cli(server, "workflow", "start", "twice", "1", "--id", "same")
    assert "already exists" in cli(server, "workflow", "start", "twice", "2", "--id", "same", code=4).stderr
    proc = run_cli("workflow", "list", PERDURE_SERVER="http://127.0.0.1:9")
    assert proc.returncode == 5
    assert "cannot reach the perdure server at http://127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_schedule_verbs(server: Server) -> None:
    cli(server, "schedule", "create", "hourly", "twice", "3", "--every", "3600")
    assert [s["id"] for s in as_json(server, "schedule", "list")] == ["hourly"]
    assert as_json(server, "schedule", "pause", "hourly")["paused"] is True
    assert as_json(server, "schedule", "resume", "hourly")["paused"] is False
    started = cli(server, "schedule", "trigger", "hourly").stdout.strip()
    assert started.startswith("hourly@")
    assert cli(server, "workflow", "result", started, "--wait", "10").stdout.strip() == "6"
    assert "every" in cli(server, "schedule", "show", "hourly").stdout
    cli(server, "schedule", "delete", "hourly")
    cli(server, "schedule", "show", "hourly", code=3)


def test_actor_verbs_call_inspect_and_delete(server: Server) -> None:
    assert cli(server, "actor", "invoke", "Counter", "c", "add", "3").stdout.strip() == "3"
    once = [as_json(server, "actor", "invoke", "Counter", "c", "add", "--kw", "n=4", "--idempotency-key", "k1")
            for _ in range(2)]  # fmt: skip
    assert [o["result"] for o in once] == [7, 7]
    assert (
        "was used for another call"
        in cli(
            server, "actor", "invoke", "Counter", "c", "add", "5", "--idempotency-key", "k1", code=4
        ).stderr
    )
    failed = cli(server, "actor", "invoke", "Counter", "c", "fail", "card declined", code=7)
    assert "failed: ValueError: card declined" in failed.stderr
    queued = cli(server, "actor", "invoke", "Counter", "c", "add", "1", "--enqueue").stdout.strip()
    assert queued.startswith("Counter/c/")
    assert cli(server, "actor", "invoke", "Quote", "usd", "price", "2").stdout.strip() == '"usd: 6 (call 1)"'
    assert (
        "is ephemeral"
        in cli(server, "actor", "invoke", "Quote", "usd", "price", "2", "--enqueue", code=2).stderr
    )
    oplog = as_json(server, "actor", "oplog", "Counter", "c")
    assert [(e["method"], e["status"]) for e in oplog["items"][:3]] == [
        ("add", "completed"), ("add", "completed"), ("fail", "failed"),
    ]  # fmt: skip
    assert oplog["items"][3]["id"] == queued  # enqueued: it runs in turn
    table = cli(server, "actor", "oplog", "Counter", "c", "--limit", "3").stdout.splitlines()
    assert table[0].split()[:3] == ["CALL", "METHOD", "STATUS"]
    assert table[2].split()[:4] == ["k1", "add", "completed", '{"n":']
    assert "ValueError: card declined" in table[3]
    assert as_json(server, "actor", "state", "Counter", "c") in ({"value": 7}, {"value": 8})
    shown = cli(server, "actor", "get", "Counter", "c").stdout.splitlines()
    assert [line.split() for line in shown[:2]] == [["type", "Counter"], ["key", "c"]]
    assert shown[2].split()[0] == "status"
    stuck = cli(server, "actor", "invoke", "Counter", "busy", "stall", "--wait", "0.2", code=8)
    assert "is not ended; ask again later" in stuck.stderr
    assert "has calls in its inbox" in cli(server, "actor", "delete", "Counter", "busy", code=4).stderr
    listed = cli(server, "actor", "list", "--status", "busy").stdout.splitlines()
    assert listed[0].split()[:3] == ["TYPE", "KEY", "STATUS"]
    assert [row.split()[:3] for row in listed[1:]] == [["Counter", "busy", "busy"]]
    page = as_json(server, "actor", "list", "--type", "Counter", "--limit", "1")
    assert ([a["key"] for a in page["items"]], page["cursor"] is not None) == (["busy"], True)
    cli(server, "actor", "invoke", "Counter", "gone", "add", "1")
    assert cli(server, "actor", "delete", "Counter", "gone").stdout.strip() == "actor Counter/gone: deleted"
    assert "no actor 'Counter/gone'" in cli(server, "actor", "get", "Counter", "gone", code=3).stderr
    assert "no actor named 'Nope'" in cli(server, "actor", "invoke", "Nope", "k", "m", code=2).stderr
    assert "Expected `int`" in cli(server, "actor", "invoke", "Counter", "c", "add", "x", code=2).stderr


def test_actor_send_puts_messages_in_the_mailbox_for_a_call_to_take(server: Server) -> None:
    assert (
        cli(server, "actor", "send", "Counter", "m", "t", "hello").stdout.strip() == "sent to Counter/m on t"
    )
    for _ in range(2):
        assert as_json(server, "actor", "send", "Counter", "m", "t", "42", "--key", "k1") == {"sent": True}
    assert as_json(server, "actor", "get", "Counter", "m")["messages"] == 2
    taken = cli(server, "actor", "invoke", "Counter", "m", "collect", "t", "2")
    assert json.loads(taken.stdout) == ["hello", 42]
    assert as_json(server, "actor", "get", "Counter", "m")["messages"] == 0
    assert "no actor named 'Nope'" in cli(server, "actor", "send", "Nope", "k", "t", "1", code=2).stderr
    assert "topic must not be empty" in cli(server, "actor", "send", "Counter", "m", "", "1", code=2).stderr


def test_executors_lists_the_executors_sharing_the_database_and_their_shards(start_server: Any) -> None:
    first = start_server()
    (only,) = as_json(first, "executors")
    assert (only["alive"], only["shards"]) == (True, 64), only
    second = start_server()  # another process on the same database: it takes half the shards
    shares = eventually_sync(
        lambda: sorted((e["alive"], e["shards"]) for e in as_json(first, "executors")),
        lambda found: found == [(True, 32), (True, 32)],
        what="two executors with 32 shards each",
    )
    assert shares == [(True, 32), (True, 32)]
    lines = cli(second, "executors").stdout.splitlines()
    assert lines[0].split() == ["ID", "HOST", "PID", "ALIVE", "SHARDS", "LEASE_EXPIRES_AT"]
    assert len(lines) == 3


def test_the_cli_sends_the_token(start_server: Any) -> None:
    server = start_server("--token", "t0k")
    assert "token" in cli(server, "workflow", "list", code=6).stderr.lower()
    proc = run_cli("workflow", "list", "--json", PERDURE_SERVER=server.url, PERDURE_TOKEN="t0k")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["items"] == []


def test_every_verb_has_help() -> None:
    for verb in (
        ["workflow"],
        ["schedule"],
        ["actor"],
        ["actor", "invoke"],
        ["actor", "send"],
        ["actor", "oplog"],
        ["server"],
        ["worker"],
        ["workflow", "start"],
        ["schedule", "create"],
    ):
        proc = run_cli(*verb, "--help")
        assert proc.returncode == 0, verb
        assert "Usage: perdure" in proc.stdout


def test_bench_roundtrip_over_http_prints_its_figures(server: Server) -> None:
    proc = cli(server, "bench", "roundtrip", "--server", server.url, "--iterations", "3", "--runs", "2")
    doc = json.loads(proc.stdout)
    assert (doc["workload"], doc["store"], doc["params"]["transport"]) == ("W3 roundtrip", "sqlite", "http")
    assert doc["runs_n"] == len(doc["runs"]) == 2
    assert doc["durability"]["server_database"] == server.db
    assert 0 < doc["figures"]["p50_ms"] <= doc["figures"]["p99_ms"]
    assert "POST /v1/workflows?wait=" in doc["measured"]
    listed = as_json(server, "workflow", "list", "--name", "perdure.ping")["items"]
    assert len(listed) == 3 + 5 + 3 + 5  # the measured and warm-up starts of both runs
