"""The server as a process: auth, what it refuses to start with, and SIGTERM under load."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

import perdure

from .conftest import HERE, Server, env, perdure_cmd, run_cli
from .served_app import twice


def test_with_a_token_every_route_but_health_wants_it(start_server: Callable[..., Server]) -> None:
    server = start_server("--token", "s3cret")
    with server.client() as anonymous, server.client("wrong") as wrong, server.client("s3cret") as ok:
        for path in ("/v1/workflows", "/v1/openapi.json", "/metrics", "/v1/schedules"):
            r = anonymous.get(path)
            assert r.status_code == 401, path
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert wrong.get(path).status_code == 401, path
            assert ok.get(path).status_code == 200, path
        assert anonymous.get("/v1/health").status_code == 200
        r = ok.post("/v1/workflows", params={"wait": 10}, json={"workflow": "twice", "args": [4]})
        assert r.json()["outcome"]["result"] == 8
        assert anonymous.post("/v1/workflows", json={"workflow": "twice", "args": [4]}).status_code == 401


def test_the_token_can_come_from_the_environment(tmp_path: Path) -> None:
    proc = run_cli("server", "--app", "served_app", "--host", "0.0.0.0", "--port", "0",
                   "--db", f"sqlite:///{tmp_path / 'x.db'}", "--help")  # fmt: skip
    assert "PERDURE_TOKEN" in proc.stdout


def test_a_public_address_without_a_token_is_refused(tmp_path: Path) -> None:
    proc = run_cli("server", "--app", "served_app", "--host", "0.0.0.0", "--port", "0",
                   "--db", f"sqlite:///{tmp_path / 'x.db'}")  # fmt: skip
    assert proc.returncode != 0
    assert "refusing to serve on '0.0.0.0'" in proc.stderr
    assert "--token" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_public_address_is_served_when_told_explicitly(start_server: Callable[..., Server]) -> None:
    server = start_server("--host", "0.0.0.0", "--insecure-no-token")
    assert "WARNING: serving on '0.0.0.0' without a token" in "".join(server.log)
    port = server.url.rsplit(":", 1)[1]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as c:
        assert c.get("/v1/workflows").status_code == 200


def test_startup_errors_are_one_line_and_exit_non_zero(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ok.db'}"
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, not even a little" * 100)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        port = str(busy.getsockname()[1])
        cases = [
            (["--app", "no_such_module", "--db", db], "cannot import app module 'no_such_module'"),
            (["--app", "missing/app.py", "--db", db], "cannot import app file 'missing/app.py'"),
            (["--app", "broken_app", "--db", db], "ZeroDivisionError"),
            (["--app", "served_app", "--db", db, "--port", port], "Address already in use"),
            (["--app", "served_app", "--db", f"sqlite:///{tmp_path / 'no' / 'dir.db'}"], "does not exist"),
            (["--app", "served_app", "--db", f"sqlite:///{junk}"], "not a SQLite database"),
            (["--app", "served_app", "--db", "mysql://x"], "unsupported database URL scheme"),
        ]
        for args, says in cases:
            port_args = [] if "--port" in args else ["--port", "0"]
            proc = run_cli("server", *args, *port_args)
            assert proc.returncode != 0, args
            assert says in proc.stderr, (args, proc.stderr)
            assert "Traceback" not in proc.stderr, proc.stderr
    finally:
        busy.close()


def test_sigterm_under_load_loses_nothing(start_server: Callable[..., Server], tmp_path: Path) -> None:
    server = start_server()
    n = 60
    with server.client() as api:
        for i in range(n):
            r = api.post("/v1/workflows", json={"workflow": "slow", "args": [100], "id": f"load-{i}"})
            assert r.status_code == 201, r.text
    code = server.stop(signal.SIGTERM)
    assert code == 0, "".join(server.log)
    assert "stopped" in "".join(server.log)
    with perdure.Engine(server.db, executor=False) as engine:
        counts = engine.count()
    unfinished = sum(k for (status, _), k in counts.items() if status is not perdure.Status.COMPLETED)
    assert unfinished > 0, f"SIGTERM came after all had finished, so it tested nothing: {counts}"
    again = start_server()
    with again.client() as api:
        for i in range(n):
            r = api.get(f"/v1/workflows/load-{i}/result", params={"wait": 30}).json()
            assert (r["status"], r["result"]) == ("completed", 4950), r


def test_a_worker_runs_what_a_server_started(start_server: Callable[..., Server], db: str) -> None:
    server = start_server()
    with server.client() as api:
        api.post("/v1/workflows", json={"workflow": "twice", "args": [1], "id": "warm"}).raise_for_status()
    server.stop(signal.SIGTERM)  # from here on only the worker runs workflows
    worker = subprocess.Popen(perdure_cmd("worker", "--app", "served_app", "--db", db), env=env(), cwd=HERE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert worker.stderr is not None
    try:
        assert "worker running" in worker.stderr.readline()
        with perdure.Engine(db, executor=False) as engine:  # a client only: the worker must run it
            assert engine.start(twice, 6, id="by-worker").result(timeout=30) == 12
            assert engine.get("warm").result(timeout=30) == 2
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        assert "stopped" in worker.stderr.read()
        worker.stderr.close()


def test_a_server_a_worker_and_many_writers_share_one_sqlite_file(
    start_server: Callable[..., Server], db: str
) -> None:
    """R13 in small: a server, a worker and concurrent writers (HTTP clients, CLI calls and a
    client engine of this process) on one SQLite file: no 'database is locked' surfaces
    anywhere, every start is answered and every workflow finishes."""
    server = start_server()
    worker = subprocess.Popen(perdure_cmd("worker", "--app", "served_app", "--db", db), env=env(), cwd=HERE,
                              stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert worker.stderr is not None
    try:
        assert "worker running" in worker.stderr.readline()

        def http_writer(n: int) -> list[int]:
            with server.client() as api:
                return [
                    api.post(
                        "/v1/workflows", json={"workflow": "twice", "args": [i], "id": f"h{n}-{i}"}
                    ).status_code
                    for i in range(15)
                ]

        def cli_writer(n: int) -> list[int]:
            return [
                run_cli(
                    "workflow", "start", "twice", str(i), "--id", f"c{n}-{i}", PERDURE_SERVER=server.url
                ).returncode
                for i in range(3)
            ]

        with ThreadPoolExecutor(12) as pool, perdure.Engine(db, executor=False) as client:
            http = [pool.submit(http_writer, n) for n in range(8)]
            cli = [pool.submit(cli_writer, n) for n in range(3)]
            for i in range(30):
                client.start(twice, i, id=f"e-{i}")
            assert [code for f in http for code in f.result()] == [201] * 8 * 15
            assert [code for f in cli for code in f.result()] == [0] * 3 * 3
            ids = [f"h{n}-{i}" for n in range(8) for i in range(15)]
            ids += [f"c{n}-{i}" for n in range(3) for i in range(3)] + [f"e-{i}" for i in range(30)]
            for wid in ids:
                value = int(wid.rsplit("-", 1)[1])
                assert client.get(wid).result(timeout=60) == 2 * value, wid
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
        worker_log = worker.stderr.read()
        worker.stderr.close()
    assert server.stop() == 0
    for log in (worker_log, "".join(server.log)):
        assert "locked" not in log, log
        assert "Traceback" not in log, log


def test_the_examples_app_serves_the_examples(db: str) -> None:
    examples = HERE.parent.parent / "examples"
    server = Server(db, app=str(examples / "app.py"), path=HERE)  # a file, from another directory
    try:
        with server.client() as api:
            hello = api.post(
                "/v1/workflows", params={"wait": 10}, json={"workflow": "hello", "args": ["ann"]}
            )
            assert hello.json()["outcome"]["result"] == "hello, ann"
            api.post("/v1/workflows", json={"workflow": "expense", "args": ["e-9", 5, "bob"], "id": "e-9"})
            stage = api.get("/v1/workflows/e-9/events/stage", params={"wait": 10}).json()
            assert stage["value"] == "waiting for approval"
            decision = {"topic": "approval", "value": {"approved": False, "by": "bob"}}
            api.post("/v1/workflows/e-9/messages", json=decision).raise_for_status()
            assert api.get("/v1/workflows/e-9/result", params={"wait": 10}).json()["result"] == "rejected"
            item = {"sku": "mug", "quantity": 2, "cents": 1200}
            api.post("/v1/actors/ShoppingCart/ann/add_item", json={"args": [item]}).raise_for_status()
            order = api.post("/v1/actors/ShoppingCart/ann/checkout", params={"wait": 10}).json()
            assert (order["status"], order["result"]["total_cents"]) == ("completed", 2400)
            spent = api.post("/v1/actors/PurchaseHistory/ann/spent_cents", params={"wait": 10}).json()
            assert spent["result"] == 2400
            added = api.get("/v1/actors/PurchaseHistory/ann/oplog").json()["items"][0]
            assert added["id"].startswith(f"PurchaseHistory/ann/{order['id']}:")  # made by the checkout
            assert api.get(f"/v1/actor-calls/{added['id']}").json()["result"] == 1
            empty = api.post("/v1/actors/ShoppingCart/ann/checkout", params={"wait": 10}).json()
            assert (empty["status"], empty["error"]["message"]) == ("failed", "the cart is empty")
    finally:
        server.stop()
        if server.proc.stderr is not None:
            server.proc.stderr.close()
