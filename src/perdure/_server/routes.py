"""The /v1 routes: each one is a thin call of one public Engine method.

Waiting routes (``result``, events, ``POST /workflows?wait=``, actor calls) long-poll: they
answer as soon as there is something to say, or after ``wait`` seconds (at
most ``MAX_WAIT``) with ``done``/``found`` false, so a client asks again rather
than holding a request open forever.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import delete, get, post
from litestar.params import Parameter

import perdure
from perdure import (
    ActorCallFailed,
    ActorInfo,
    ActorPage,
    Engine,
    ErrorDetails,
    ExecutorInfo,
    HistoryEntry,
    InvalidArgument,
    OplogPage,
    ResultTimeout,
    RunInfo,
    ScheduleInfo,
    Status,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowInfo,
    WorkflowPage,
)
from perdure._model.definitions import Kind
from perdure._server.models import (
    MAX_WAIT,
    Cancelled,
    CreateSchedule,
    EventValue,
    Health,
    Invocation,
    InvokeActor,
    QueryAnswer,
    QueryRequest,
    SendMessage,
    Started,
    StartWorkflow,
    Triggered,
    WorkflowResult,
)
from perdure._server.problems import responses

Wait = Annotated[
    float,
    Parameter(ge=0, le=MAX_WAIT, description=f"seconds to wait for the answer (at most {MAX_WAIT:g})"),
]
IdempotencyKey = Annotated[
    str | None,
    Parameter(
        header="Idempotency-Key", required=False,
        description="the same key again (a retry) runs the call once and answers its outcome; "
        "with other arguments: 409",
    ),
]  # fmt: skip
WORKFLOW = ["workflows"]
ACTOR = ["actors"]
SCHEDULE = ["schedules"]


async def outcome(engine: Engine, workflow_id: str, wait: float) -> WorkflowResult:
    """The workflow's end, waiting up to ``wait`` seconds for it."""
    try:
        value = await engine.result(workflow_id, timeout=wait)
        return WorkflowResult(id=workflow_id, status=Status.COMPLETED, done=True, result=value)
    except WorkflowCancelled:
        return WorkflowResult(id=workflow_id, status=Status.CANCELLED, done=True)
    except (WorkflowFailed, ResultTimeout):
        info = await engine.info(workflow_id)
        done = info.status in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)
        return WorkflowResult(id=workflow_id, status=info.status, done=done, error=info.error)


# --- workflows -------------------------------------------------------------------


@post("/workflows", tags=WORKFLOW, responses=responses(409))
async def start_workflow(engine: Engine, data: StartWorkflow, wait: Wait = 0.0) -> Started:
    """Start a workflow by its registered name (idempotent with an ``id``); with ``wait``, also
    wait that long for its result, so a short workflow takes one request."""
    handle = await engine.start(
        data.workflow, *data.args, id=data.id, execution_timeout=data.execution_timeout, **data.kwargs
    )
    done = await outcome(engine, handle.id, wait) if wait > 0 else None
    return Started(id=handle.id, name=data.workflow, outcome=done)


@get("/workflows", tags=WORKFLOW, responses=responses())
async def list_workflows(
    engine: Engine,
    status: str | None = None,
    name: str | None = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> WorkflowPage:
    """Workflows, newest first, optionally of one status and one workflow name; pass ``cursor``
    from a page to get the next one."""
    return await engine.list(status=status, name=name, limit=limit, cursor=cursor)


@get("/workflows/{workflow_id:str}", tags=WORKFLOW, responses=responses(404))
async def get_workflow(engine: Engine, workflow_id: str) -> WorkflowInfo:
    return await engine.info(workflow_id)


@get("/workflows/{workflow_id:str}/history", tags=WORKFLOW, responses=responses(404))
async def workflow_history(engine: Engine, workflow_id: str) -> list[HistoryEntry]:
    """The journal: one entry per recorded operation, with inputs, results, errors and attempts."""
    return await engine.history(workflow_id)


@get("/workflows/{workflow_id:str}/runs", tags=WORKFLOW, responses=responses(404))
async def workflow_runs(engine: Engine, workflow_id: str) -> list[RunInfo]:
    """Earlier runs of a workflow that continued as new, oldest first."""
    return await engine.runs(workflow_id)


@get("/workflows/{workflow_id:str}/result", tags=WORKFLOW, responses=responses(404))
async def workflow_result(engine: Engine, workflow_id: str, wait: Wait = 0.0) -> WorkflowResult:
    """The workflow's result, error or cancellation; ``done: false`` if it has not ended
    within ``wait`` seconds."""
    return await outcome(engine, workflow_id, wait)


@post("/workflows/{workflow_id:str}/messages", tags=WORKFLOW, status_code=202, responses=responses(404, 409))
async def send_message(engine: Engine, workflow_id: str, data: SendMessage) -> None:
    """Send a message (a signal) the workflow receives with ``perdure.recv(topic)``; delivered once."""
    await engine.send(workflow_id, data.topic, data.value, idempotency_key=data.idempotency_key)


@post(
    "/workflows/{workflow_id:str}/queries/{query_name:str}",
    tags=WORKFLOW,
    status_code=200,
    responses=responses(404, 422),
)
async def query_workflow(
    engine: Engine, workflow_id: str, query_name: str, data: QueryRequest
) -> QueryAnswer:
    """Ask the workflow's query handler (``perdure.on_query``); never changes the workflow."""
    return QueryAnswer(result=await engine.query(workflow_id, query_name, *data.args))


@get("/workflows/{workflow_id:str}/events/{key:str}", tags=WORKFLOW, responses=responses(404, 409))
async def workflow_event(engine: Engine, workflow_id: str, key: str, wait: Wait = 0.0) -> EventValue:
    """What the workflow published under ``key`` (``perdure.set_event``); with ``wait``, wait for it.
    A workflow that ended without publishing it: 409."""
    if wait > 0:
        try:
            value = await engine.wait_event(workflow_id, key, timeout=wait)
        except ResultTimeout:
            return EventValue(key=key, found=False)
    else:
        value = await engine.get_event(workflow_id, key)
    return EventValue(key=key, found=value is not None, value=value)


@post("/workflows/{workflow_id:str}/cancel", tags=WORKFLOW, status_code=200, responses=responses(404))
async def cancel_workflow(engine: Engine, workflow_id: str) -> Cancelled:
    """Cancel: at once if it waits, at its next durable operation if it runs."""
    return Cancelled(id=workflow_id, status=await engine.cancel(workflow_id))


@post("/workflows/{workflow_id:str}/resume", tags=WORKFLOW, status_code=200, responses=responses(404, 409))
async def resume_workflow(engine: Engine, workflow_id: str) -> WorkflowInfo:
    """Run a parked workflow again, after fixing what parked it."""
    await engine.resume(workflow_id)
    return await engine.info(workflow_id)


# --- actors ----------------------------------------------------------------------


async def call_outcome(engine: Engine, call_id: str, wait: float) -> Invocation:
    """The actor call's end, waiting up to ``wait`` seconds for it."""
    try:
        value = await engine.invocation_result(call_id, timeout=wait)
        return Invocation(id=call_id, done=True, status=Status.COMPLETED, result=value)
    except ActorCallFailed as exc:
        error = ErrorDetails(type=exc.error_type, message=exc.message, traceback=exc.traceback)
        return Invocation(id=call_id, done=True, status=Status.FAILED, error=error)
    except WorkflowCancelled:
        return Invocation(id=call_id, done=True, status=Status.CANCELLED)
    except ResultTimeout:
        return Invocation(id=call_id, done=False)


async def invoke(
    engine: Engine, actor_type: str, key: str, method: str, data: InvokeActor | None,
    idempotency_key: str | None, wait: float,
) -> Invocation:  # fmt: skip
    """Put the call in the actor's inbox, then wait up to ``wait`` seconds for its outcome.
    An ephemeral actor has no inbox: its call runs within the request (see ``ephemeral``)."""
    call = data or InvokeActor()
    if "idempotency_key" in call.kwargs:
        raise InvalidArgument(
            "pass the idempotency key as the Idempotency-Key header, not as a keyword argument"
        )
    spec = engine.registry.find(Kind.ACTOR, actor_type)
    if spec is not None and not spec.durable:
        return await ephemeral(engine, actor_type, key, method, call, idempotency_key, wait)
    call_id = await engine.enqueue(
        actor_type, key, method, *call.args, idempotency_key=idempotency_key, **call.kwargs
    )
    return await call_outcome(engine, call_id, wait)


async def ephemeral(
    engine: Engine, actor_type: str, key: str, method: str, call: InvokeActor,
    idempotency_key: str | None, wait: float,
) -> Invocation:  # fmt: skip
    """An ephemeral actor's call: a fresh object runs the method within the request, however
    long it takes, and nothing is recorded (so no call id, no idempotency, no fire and forget)."""
    refused = (
        "an Idempotency-Key (nothing is recorded to make the call once)" if idempotency_key is not None
        else "wait=0 (it has no inbox to leave the call in)" if wait == 0
        else None
    )  # fmt: skip
    if refused is not None:
        raise InvalidArgument(
            f"actor {actor_type!r} is ephemeral: its calls run in the request; drop {refused}"
        )
    try:
        value = await engine.invoke(actor_type, key, method, *call.args, **call.kwargs)
    except ActorCallFailed as exc:
        error = ErrorDetails(type=exc.error_type, message=exc.message, traceback=exc.traceback)
        return Invocation(id=None, done=True, status=Status.FAILED, error=error)
    return Invocation(id=None, done=True, status=Status.COMPLETED, result=value)


@post(
    "/actors/{actor_type:str}/{key:str}/{method:str}", tags=ACTOR, status_code=200, responses=responses(409)
)
async def invoke_actor(
    engine: Engine, actor_type: str, key: str, method: str, data: InvokeActor | None = None,
    idempotency_key: IdempotencyKey = None, wait: Wait = 10.0,
) -> Invocation:  # fmt: skip
    """Call a public method of actor ``actor_type``/``key`` with JSON arguments: the call goes
    into the actor's inbox, then the request waits up to ``wait`` seconds for its outcome
    (``done: false`` and the call's id if it is still going: ask again at
    ``/v1/actor-calls/{id}``). ``wait=0`` is fire and forget. A method that raised answers
    200 with ``status: failed`` and the error. The actor exists once called. An ephemeral
    actor's call runs within the request and answers when done, with no id."""
    return await invoke(engine, actor_type, key, method, data, idempotency_key, wait)


def invoke_named(method: str) -> Any:
    """``POST /actors/T/K/<method>`` for a method named like a GET route's last segment
    (``state``, ``oplog``): that static segment would otherwise answer 405 to a POST."""

    @post(
        f"/actors/{{actor_type:str}}/{{key:str}}/{method}", status_code=200, include_in_schema=False,
        name=f"invoke_actor_{method}",
    )  # fmt: skip
    async def invoke_it(
        engine: Engine, actor_type: str, key: str, data: InvokeActor | None = None,
        idempotency_key: IdempotencyKey = None, wait: Wait = 10.0,
    ) -> Invocation:  # fmt: skip
        return await invoke(engine, actor_type, key, method, data, idempotency_key, wait)

    return invoke_it


@post("/actors/{actor_type:str}/{key:str}/messages", tags=ACTOR, status_code=202, responses=responses())
async def send_actor_message(engine: Engine, actor_type: str, key: str, data: SendMessage) -> None:
    """Put a message in the actor's mailbox: a call of the actor takes it with
    ``perdure.recv(topic)``, in send order; until one does, it waits there. Delivered once per
    ``idempotency_key``. An actor never called exists from its first message on. (This path
    is the mailbox's: a method named ``messages`` is not callable over HTTP.)"""
    await engine.send_actor(actor_type, key, data.topic, data.value, idempotency_key=data.idempotency_key)


@get("/actor-calls/{call_id:path}", tags=ACTOR, responses=responses(404))
async def actor_call(engine: Engine, call_id: str, wait: Wait = 0.0) -> Invocation:
    """An actor call by its id (``type/key/call``), waiting up to ``wait`` seconds for it to end."""
    return await call_outcome(engine, call_id.lstrip("/"), wait)


@get("/actors", tags=ACTOR, responses=responses())
async def list_actors(
    engine: Engine,
    actor_type: Annotated[str | None, Parameter(query="type")] = None,
    key_prefix: str | None = None,
    status: Literal["idle", "busy"] | None = None,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> ActorPage:
    """Actors by type and key, optionally of one type, key prefix and status (``busy``: a call
    is in its inbox); pass ``cursor`` from a page to get the next one."""
    return await engine.list_actors(
        type=actor_type, key_prefix=key_prefix, status=status, limit=limit, cursor=cursor
    )


@get("/actors/{actor_type:str}/{key:str}", tags=ACTOR, responses=responses(404))
async def get_actor(engine: Engine, actor_type: str, key: str) -> ActorInfo:
    return await engine.actor_info(actor_type, key)


@get("/actors/{actor_type:str}/{key:str}/state", tags=ACTOR, responses=responses(404))
async def actor_state(engine: Engine, actor_type: str, key: str) -> dict[str, Any]:
    """The actor's attributes as saved after its last call."""
    return await engine.actor_state(actor_type, key)


@get("/actors/{actor_type:str}/{key:str}/oplog", tags=ACTOR, responses=responses(404))
async def actor_oplog(
    engine: Engine,
    actor_type: str,
    key: str,
    limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
    cursor: str | None = None,
) -> OplogPage:
    """The actor's calls, oldest first: method, arguments, outcome, times, state size."""
    return await engine.actor_oplog(actor_type, key, limit=limit, cursor=cursor)


@delete("/actors/{actor_type:str}/{key:str}", tags=ACTOR, responses=responses(404, 409))
async def delete_actor(engine: Engine, actor_type: str, key: str) -> None:
    """Delete the actor, its state, its oplog and its mailbox; 409 while a call is in its inbox."""
    await engine.delete_actor(actor_type, key)


# --- schedules -------------------------------------------------------------------


@post("/schedules", tags=SCHEDULE, responses=responses(409))
async def create_schedule(engine: Engine, data: CreateSchedule) -> ScheduleInfo:
    """Create a cron or interval schedule; the same definition again returns it, another: 409."""
    return await engine.create_schedule(
        data.id, data.workflow, *data.args, cron=data.cron, every=data.every, timezone=data.timezone,
        overlap=data.overlap, catchup=data.catchup, **data.kwargs,
    )  # fmt: skip


@get("/schedules", tags=SCHEDULE, responses=responses())
async def list_schedules(engine: Engine) -> list[ScheduleInfo]:
    return await engine.list_schedules()


@get("/schedules/{schedule_id:str}", tags=SCHEDULE, responses=responses(404))
async def get_schedule(engine: Engine, schedule_id: str) -> ScheduleInfo:
    return await engine.get_schedule(schedule_id)


@post("/schedules/{schedule_id:str}/pause", tags=SCHEDULE, status_code=200, responses=responses(404))
async def pause_schedule(engine: Engine, schedule_id: str) -> ScheduleInfo:
    """Start no ticks until resumed; the ticks in between are skipped."""
    await engine.pause_schedule(schedule_id)
    return await engine.get_schedule(schedule_id)


@post("/schedules/{schedule_id:str}/resume", tags=SCHEDULE, status_code=200, responses=responses(404))
async def resume_schedule(engine: Engine, schedule_id: str) -> ScheduleInfo:
    await engine.resume_schedule(schedule_id)
    return await engine.get_schedule(schedule_id)


@post("/schedules/{schedule_id:str}/trigger", tags=SCHEDULE, status_code=200, responses=responses(404))
async def trigger_schedule(engine: Engine, schedule_id: str) -> Triggered:
    """Start the schedule's workflow now, besides its ticks."""
    handle = await engine.trigger_schedule(schedule_id)
    return Triggered(schedule=schedule_id, workflow_id=handle.id)


@delete("/schedules/{schedule_id:str}", tags=SCHEDULE, responses=responses(404))
async def delete_schedule(engine: Engine, schedule_id: str) -> None:
    """Delete the schedule; the workflows it started are left alone."""
    await engine.delete_schedule(schedule_id)


@get("/executors", tags=["server"], responses=responses())
async def list_executors(engine: Engine) -> list[ExecutorInfo]:
    """The executors sharing the database: their leases, and how many shards each leases."""
    return await engine.executors()


@get("/health", tags=["server"], opt={"public": True}, responses=responses())
async def health(engine: Engine) -> Health:
    """Liveness: answers without a token."""
    return Health(status="ok", version=perdure.__version__, database=engine.url)


ROUTES: list[Any] = [
    start_workflow, list_workflows, get_workflow, workflow_history, workflow_runs, workflow_result,
    send_message, query_workflow, workflow_event, cancel_workflow, resume_workflow,
    send_actor_message, invoke_actor, invoke_named("state"), invoke_named("oplog"), actor_call, list_actors, get_actor,
    actor_state, actor_oplog, delete_actor,
    create_schedule, list_schedules, get_schedule, pause_schedule, resume_schedule, trigger_schedule,
    delete_schedule, list_executors, health,
]  # fmt: skip
