"""The /v1 routes: each one is a thin call of one public Engine method.

Waiting routes (``result``, events, ``POST /workflows?wait=``) long-poll: they
answer as soon as there is something to say, or after ``wait`` seconds (at
most ``MAX_WAIT``) with ``done``/``found`` false, so a client asks again rather
than holding a request open forever.
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import delete, get, post
from litestar.params import Parameter

import perdure
from perdure import (
    Engine,
    HistoryEntry,
    ResultTimeout,
    RunInfo,
    ScheduleInfo,
    Status,
    WorkflowCancelled,
    WorkflowFailed,
    WorkflowInfo,
    WorkflowPage,
)
from perdure._server.models import (
    MAX_WAIT,
    Cancelled,
    CreateSchedule,
    EventValue,
    Health,
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
WORKFLOW = ["workflows"]
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


@get("/health", tags=["server"], opt={"public": True}, responses=responses())
async def health(engine: Engine) -> Health:
    """Liveness: answers without a token."""
    return Health(status="ok", version=perdure.__version__, database=engine.url)


ROUTES: list[Any] = [
    start_workflow, list_workflows, get_workflow, workflow_history, workflow_runs, workflow_result,
    send_message, query_workflow, workflow_event, cancel_workflow, resume_workflow,
    create_schedule, list_schedules, get_schedule, pause_schedule, resume_schedule, trigger_schedule,
    delete_schedule, health,
]  # fmt: skip
