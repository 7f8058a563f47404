"""Bad input is rejected with a clear error (field, value, fix) and records nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import perdure


async def assert_nothing_recorded(engine: perdure.Engine) -> None:
    assert (await engine.list()).items == []


# --- durable operations outside a workflow ------------------------------------

OPERATIONS: dict[str, Callable[[], object]] = {
    "perdure.now()": perdure.now,
    "perdure.random()": perdure.random,
    "perdure.uuid4()": perdure.uuid4,
    "perdure.sleep()": lambda: perdure.sleep(1),
    "perdure.recv()": lambda: perdure.recv("topic"),
    "perdure.send()": lambda: perdure.send("wf", "topic", 1),
    "perdure.set_event()": lambda: perdure.set_event("key", 1),
    "perdure.sleep_until()": lambda: perdure.sleep_until(datetime(2030, 1, 1, tzinfo=UTC)),
    "perdure.continue_as_new()": lambda: perdure.continue_as_new(1),
    "perdure.on_query()": lambda: perdure.on_query("state", lambda: None),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_durable_operations_outside_a_workflow_say_where_they_belong(operation: str) -> None:
    with pytest.raises(perdure.OutsideWorkflow) as info:
        OPERATIONS[operation]()
    message = str(info.value)
    assert operation in message
    assert "outside a workflow" in message
    assert "@perdure.workflow" in message
    assert isinstance(info.value, RuntimeError)


def test_idempotency_key_outside_a_step_says_where_it_belongs() -> None:
    with pytest.raises(
        perdure.OutsideWorkflow, match=r"perdure\.idempotency_key\(\) was called outside a step"
    ):
        perdure.idempotency_key()


async def test_a_step_called_outside_a_workflow_says_where_it_belongs(registry: perdure.Registry) -> None:
    @perdure.step(name="charge", registry=registry)
    async def charge(amount: int) -> int:
        return amount

    with pytest.raises(perdure.OutsideWorkflow, match=r"step 'charge'.*outside a workflow"):
        await charge(1)
    assert await charge.fn(2) == 2, "the undecorated function stays callable"


async def test_durable_operations_inside_a_step_are_refused(db_url: str, registry: perdure.Registry) -> None:
    @perdure.step(registry=registry, retry=perdure.RetryPolicy(max_attempts=1))
    async def sneaky() -> float:
        return perdure.random()

    @perdure.workflow(registry=registry)
    async def run() -> float:
        value: float = await sneaky()
        return value

    async with perdure.Engine(db_url, registry=registry) as engine:
        with pytest.raises(perdure.WorkflowFailed) as failed:
            await (await engine.start(run)).result(timeout=10)
    assert "perdure.random() was called inside a step" in failed.value.message


# --- registration -----------------------------------------------------------


def test_registering_another_function_under_a_taken_name_is_refused(registry: perdure.Registry) -> None:
    @perdure.workflow(name="checkout", registry=registry)
    async def checkout_v1() -> None:
        return None

    with pytest.raises(perdure.RegistrationError) as info:

        @perdure.workflow(name="checkout", registry=registry)
        async def checkout_v2() -> None:
            return None

    message = str(info.value)
    assert "'checkout'" in message
    assert "checkout_v1" in message
    assert "checkout_v2" in message
    assert "name='...'" in message
    assert isinstance(info.value, perdure.InvalidArgument)


def test_registering_the_same_function_twice_is_harmless(registry: perdure.Registry) -> None:
    async def checkout() -> None:
        return None

    first = perdure.workflow(name="checkout", registry=registry)(checkout)
    second = perdure.workflow(name="checkout", registry=registry)(checkout)
    assert first.name == second.name == "checkout"


def test_steps_and_workflows_have_separate_names(registry: perdure.Registry) -> None:
    @perdure.workflow(name="same", registry=registry)
    async def as_workflow() -> None:
        return None

    @perdure.step(name="same", registry=registry)
    async def as_step() -> None:
        return None

    assert as_workflow.name == as_step.name == "same"


@pytest.mark.parametrize("name", ["", "a/b", "..", "x" * 201, "tab\there"])
def test_invalid_registered_names_are_refused(registry: perdure.Registry, name: str) -> None:
    with pytest.raises(perdure.InvalidArgument, match="workflow name"):
        perdure.workflow(name=name, registry=registry)(lambda: None)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"timeout": 0}, "timeout must be a number of seconds > 0"),
        ({"timeout": -1.0}, "timeout must be a number of seconds > 0"),
        ({"timeout": "5s"}, "timeout must be a number of seconds > 0"),
        ({"retry": {"max_attempts": 3}}, "retry must be a perdure.RetryPolicy"),
    ],
)
def test_invalid_step_options_are_refused(
    registry: perdure.Registry, options: dict[str, Any], fragment: str
) -> None:
    with pytest.raises(perdure.InvalidArgument, match=fragment.replace(".", r"\.")):
        perdure.step(registry=registry, **options)(lambda: None)


def test_generators_cannot_be_workflows(registry: perdure.Registry) -> None:
    def numbers() -> Any:
        yield 1

    with pytest.raises(perdure.InvalidArgument, match="generator"):
        perdure.workflow(registry=registry)(numbers)


# --- starting ---------------------------------------------------------------


async def test_starting_an_unregistered_workflow_name_is_refused(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(name="known", registry=registry)
    async def known() -> None:
        return None

    async with perdure.Engine(db_url, registry=registry) as engine:
        with pytest.raises(perdure.RegistrationError) as info:
            await engine.start("unknown-flow")
        assert "'unknown-flow'" in str(info.value)
        assert "known: known" in str(info.value)
        with pytest.raises(perdure.InvalidArgument, match=r"takes a @perdure\.workflow"):
            await engine.start(42)  # type: ignore[call-overload]
        await assert_nothing_recorded(engine)


async def test_an_unserializable_argument_is_named(db_url: str, registry: perdure.Registry) -> None:
    @perdure.workflow(registry=registry)
    async def notify(user: str, callback: object) -> None:
        return None

    async with perdure.Engine(db_url, registry=registry) as engine:
        with pytest.raises(perdure.InvalidArgument) as info:
            await engine.start(notify, "ann", lambda: None)
        assert "argument 'callback'" in str(info.value)
        assert "'user'" not in str(info.value)
        await assert_nothing_recorded(engine)


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((), {}), ((1, 2, 3), {}), ((1,), {"nope": 2}), ((1,), {"count": 2, "order": 3})],
    ids=["missing", "too-many", "unknown-keyword", "twice"],
)
async def test_wrong_arguments_are_refused_with_the_signature(
    db_url: str, registry: perdure.Registry, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    @perdure.workflow(name="pack", registry=registry)
    async def pack(order: int, count: int = 1) -> None:
        return None

    async with perdure.Engine(db_url, registry=registry) as engine:
        with pytest.raises(perdure.InvalidArgument) as info:
            await engine.start(pack, *args, **kwargs)
        assert "wrong arguments for workflow 'pack'" in str(info.value)
        assert "(order: 'int', count: 'int' = 1)" in str(info.value), "the message shows the signature"
        await assert_nothing_recorded(engine)


@pytest.mark.parametrize(
    ("args", "where"),
    [
        (("seven", 1.0), "$.count"),
        ((True, 1.0), "$.count"),
        ((7, float("nan")), "$.weight"),
        ((7, float("inf")), "$.weight"),
        ((7, "heavy"), "$.weight"),
    ],
    ids=["str-for-int", "bool-for-int", "nan", "infinity", "str-for-float"],
)
async def test_arguments_that_do_not_fit_the_annotations_are_refused_before_anything_is_recorded(
    db_url: str, registry: perdure.Registry, args: tuple[object, ...], where: str
) -> None:
    @perdure.workflow(name="weigh", registry=registry)
    async def weigh(count: int, weight: float) -> float:
        return count * weight

    async with perdure.Engine(db_url, registry=registry) as engine:
        with pytest.raises(perdure.InvalidArgument) as info:
            await engine.start(weigh, *args)
        assert "workflow 'weigh'" in str(info.value)
        assert where in str(info.value), "the message names the argument"
        await assert_nothing_recorded(engine)
        assert await (await engine.start(weigh, 2, 1.5)).result(timeout=10) == 3.0


BAD_IDS: list[tuple[object, str]] = [
    ("", "must not be empty"),
    ("x" * 201, "201 characters long"),
    ("a\x00b", "control characters"),
    ("line\nbreak", "control characters"),
    ("esc\x1b[31m", "control characters"),
    ("a/b", "must not contain '/'"),
    ("..", "'..'"),
    (".", "'.'"),
    (42, "must be a str"),
]


@pytest.mark.parametrize(("bad", "fragment"), BAD_IDS, ids=[repr(b)[:20] for b, _ in BAD_IDS])
async def test_invalid_workflow_ids_are_refused_everywhere(
    db_url: str, registry: perdure.Registry, bad: object, fragment: str
) -> None:
    @perdure.workflow(registry=registry)
    async def noop() -> None:
        return None

    async with perdure.Engine(db_url, registry=registry) as engine:
        calls: list[Callable[[], Awaitable[object]]] = [
            lambda: engine.start(noop, id=bad),  # type: ignore[call-overload]
            lambda: engine.get(bad),  # type: ignore[arg-type]
            lambda: engine.info(bad),  # type: ignore[arg-type]
            lambda: engine.cancel(bad),  # type: ignore[arg-type]
            lambda: engine.resume(bad),  # type: ignore[arg-type]
        ]
        for call in calls:
            with pytest.raises(perdure.InvalidArgument) as info:
                await call()
            assert "workflow id" in str(info.value)
            assert fragment in str(info.value)
        await assert_nothing_recorded(engine)


async def test_the_longest_allowed_id_is_accepted(db_url: str, registry: perdure.Registry) -> None:
    @perdure.workflow(registry=registry)
    async def noop() -> int:
        return 1

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(noop, id="é" * 200)
        assert await handle.result(timeout=10) == 1


async def test_unknown_ids_are_not_found(db_url: str, registry: perdure.Registry) -> None:
    async with perdure.Engine(db_url, registry=registry) as engine:
        for call in (engine.get, engine.info, engine.history, engine.cancel, engine.resume):
            with pytest.raises(perdure.NotFound, match="'ghost'"):
                await call("ghost")


async def test_resuming_an_ended_workflow_is_refused(db_url: str, registry: perdure.Registry) -> None:
    @perdure.workflow(registry=registry)
    async def noop() -> None:
        return None

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(noop)
        await handle.result(timeout=10)
        with pytest.raises(perdure.InvalidState, match="only parked instances can be resumed"):
            await engine.resume(handle.id)


async def test_a_result_that_no_longer_fits_the_return_annotation_says_so(db_url: str) -> None:
    before, after = perdure.Registry(), perdure.Registry()

    @perdure.workflow(registry=before, name="quote")
    async def quote_then() -> str:
        return "twelve"

    @perdure.workflow(registry=after, name="quote")
    async def quote_now() -> int:
        return 12

    async with perdure.Engine(db_url, registry=before) as engine:
        assert await (await engine.start(quote_then, id="q-1")).result(timeout=10) == "twelve"
    async with perdure.Engine(db_url, registry=after) as engine:
        with pytest.raises(perdure.InvalidState, match=r"workflow 'q-1' returned a value that does not fit"):
            await engine.result("q-1")
        assert (await engine.info("q-1")).status is perdure.Status.COMPLETED  # nothing changed


@pytest.mark.parametrize("timeout", [-1, "soon", True])
async def test_invalid_result_timeouts_are_refused(
    db_url: str, registry: perdure.Registry, timeout: object
) -> None:
    @perdure.workflow(registry=registry)
    async def noop() -> None:
        return None

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(noop)
        with pytest.raises(perdure.InvalidArgument, match="timeout"):
            await handle.result(timeout=timeout)  # type: ignore[arg-type]


# --- listing ----------------------------------------------------------------

BAD_FILTERS: list[tuple[dict[str, Any], str]] = [
    ({"status": "done"}, "unknown status 'done'; use one of pending, running"),
    ({"status": 3}, "unknown status 3"),
    ({"limit": 0}, "limit must be an integer from 1 to 1000, got 0"),
    ({"limit": 1001}, "got 1001"),
    ({"limit": -5}, "got -5"),
    ({"limit": True}, "got True"),
    ({"limit": "10"}, "got '10'"),
    ({"limit": 2.5}, "got 2.5"),
    ({"cursor": "not-a-cursor"}, "invalid cursor 'not-a-cursor'"),
    ({"cursor": "s1 OR 1=1"}, "invalid cursor"),
    ({"cursor": 17}, "cursor must be a str"),
    ({"name": ""}, "workflow name must not be empty"),
    ({"name": "a/b"}, "workflow name 'a/b'"),
]


@pytest.mark.parametrize(("filters", "fragment"), BAD_FILTERS, ids=[repr(f) for f, _ in BAD_FILTERS])
async def test_invalid_list_filters_are_refused(
    db_url: str, registry: perdure.Registry, filters: dict[str, Any], fragment: str
) -> None:
    async with perdure.Engine(db_url, registry=registry) as engine:
        with pytest.raises(perdure.InvalidArgument) as info:
            await engine.list(**filters)
    assert fragment in str(info.value)


# --- engine options and URLs --------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("postgresql://localhost/db?pool_size=0", "pool_size='0'"),
        ("postgres://localhost:port/db", "port of the PostgreSQL URL"),
        ("mysql://x", "unsupported database URL scheme 'mysql'"),
        ("sqlite://", "names no file"),
        ("sqlite:///:memory:", "cannot be durable"),
        ("sqlite:///x.db?journal=off", "unknown SQLite URL parameter"),
        ("sqlite:///x.db?synchronous=OFF", "synchronous='OFF' is not supported"),
    ],
)
def test_unusable_database_urls_are_refused(url: str, fragment: str) -> None:
    with pytest.raises(perdure.InvalidArgument) as info:
        perdure.Engine(url, registry=perdure.Registry())
    assert fragment in str(info.value)


async def test_postgres_credentials_never_show_in_the_url_or_in_errors(registry: perdure.Registry) -> None:
    engine = perdure.Engine(
        "postgresql://someone:s3cret@127.0.0.1:1/db?pool_size=2",
        registry=registry,
        store_retry_deadline=0.2,
    )
    assert engine.url == "postgresql://127.0.0.1:1/db"
    with pytest.raises(perdure.StoreError) as info:
        await engine.open()
    assert "s3cret" not in str(info.value)
    assert "someone" not in engine.url


async def test_postgres_user_names_are_blanked_out_of_errors(
    postgres_server: str, registry: perdure.Registry
) -> None:
    host = postgres_server.split("@", 1)[1]  # the test server, as a user that does not exist
    engine = perdure.Engine(
        f"postgresql://nobody_xq7:s3cret@{host}", registry=registry, store_retry_deadline=0.2
    )
    with pytest.raises(perdure.StoreError) as info:
        await engine.open()
    assert "nobody_xq7" not in str(info.value)
    assert "s3cret" not in str(info.value)


@pytest.mark.parametrize(
    "options",
    [
        {"max_active": 0},
        {"lease_ttl": -1.0},
        {"poll_interval": "1"},
        {"max_recoveries": 1.5},
        {"busy_timeout": True},
    ],
)
def test_invalid_engine_options_are_refused(db_url: str, options: dict[str, Any]) -> None:
    (name,) = options
    with pytest.raises(perdure.InvalidArgument, match=f"Engine\\({name}=...\\) must be"):
        perdure.Engine(db_url, registry=perdure.Registry(), **options)


async def test_a_file_that_is_not_a_perdure_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(perdure.IncompatibleDatabase, match="not a SQLite database"):
        async with perdure.Engine(f"sqlite:///{path}", registry=perdure.Registry()):
            pass


async def test_a_closed_engine_refuses_calls(db_url: str, registry: perdure.Registry) -> None:
    engine = perdure.Engine(db_url, registry=registry)
    with pytest.raises(perdure.InvalidState, match="not open"):
        await engine.list()
    await engine.open()
    await engine.close()
    with pytest.raises(perdure.InvalidState):
        await engine.list()
    with pytest.raises(perdure.InvalidState, match="closed"):
        await engine.open()


async def test_a_sync_engine_refuses_to_be_used_from_a_running_loop(db_url: str) -> None:
    def use_sync() -> None:
        with perdure.Engine(db_url, registry=perdure.Registry()):
            pass

    # Built in a thread it works; inside the loop's thread it must refuse clearly.
    await asyncio.to_thread(use_sync)
    with pytest.raises(perdure.InvalidState, match="running event loop"):
        use_sync()


@pytest.mark.parametrize(
    ("bad_wait", "fragment"),
    [
        ("sleep(-1)", "sleep duration must be >= 0, got -1"),
        ("sleep(nan)", "sleep duration must be seconds or a timedelta, got nan"),
        ("sleep('1h')", "sleep duration must be seconds or a timedelta, got '1h'"),
        ("sleep_until(naive)", "needs a timezone-aware datetime"),
        ("recv(timeout=-2)", "recv timeout must be >= 0, got -2"),
    ],
)
async def test_invalid_durations_fail_the_workflow_naming_the_value(
    db_url: str, registry: perdure.Registry, bad_wait: str, fragment: str
) -> None:
    waits: dict[str, Callable[[], Awaitable[object]]] = {
        "sleep(-1)": lambda: perdure.sleep(-1),
        "sleep(nan)": lambda: perdure.sleep(float("nan")),
        "sleep('1h')": lambda: perdure.sleep("1h"),  # type: ignore[arg-type]
        "sleep_until(naive)": lambda: perdure.sleep_until(
            datetime(2030, 1, 1)
        ),  # a naive datetime: the bad input
        "recv(timeout=-2)": lambda: perdure.recv("t", timeout=-2),
    }

    @perdure.workflow(registry=registry)
    async def wait() -> None:
        await waits[bad_wait]()

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(wait)
        with pytest.raises(perdure.WorkflowFailed) as failed:
            await handle.result(timeout=10)
        history = await handle.history()
    assert failed.value.error_type == "perdure.InvalidArgument"
    assert fragment in failed.value.message
    assert history == [], "nothing was recorded for the bad wait"


async def test_timeouts_that_are_not_finite_numbers_of_seconds_are_refused(
    db_url: str, registry: perdure.Registry
) -> None:
    @perdure.workflow(registry=registry)
    async def quick() -> int:
        return 1

    async with perdure.Engine(db_url, registry=registry) as engine:
        handle = await engine.start(quick)
        for bad in (float("nan"), float("inf"), -1, "5s"):
            with pytest.raises(perdure.InvalidArgument, match="timeout must be a number of seconds >= 0"):
                await handle.result(timeout=bad)  # type: ignore[arg-type]
            with pytest.raises(
                perdure.InvalidArgument, match="execution_timeout must be a number of seconds > 0"
            ):
                await engine.start(quick, execution_timeout=bad)  # type: ignore[arg-type]
        assert await handle.result(timeout=10) == 1
        assert (await engine.list()).items[0].id == handle.id, "no refused start was recorded"
