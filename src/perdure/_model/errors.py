"""One exception tree for everything perdure raises.

::

    PerdureError
    ├── InvalidArgument (ValueError)        bad input: says the field, the value and the fix
    │   └── RegistrationError               a name registered twice, or not at all
    ├── NotFound (LookupError)              no workflow with that id
    ├── Conflict                            an id reused with other content (idempotent start)
    ├── InvalidState                        the instance's state forbids the action
    ├── OutsideWorkflow (RuntimeError)      a durable operation called outside a workflow
    ├── NonDeterminismError                 replay found another operation than recorded
    ├── WorkflowFailed                      the workflow raised; carries type, message, traceback
    ├── WorkflowCancelled                   the workflow was cancelled
    ├── WorkflowTimedOut                    the workflow ran past its execution timeout
    ├── ActorCallFailed                     an actor method raised; its state is as before the call
    ├── StepFailed                          a step gave up (non-retryable or out of attempts)
    ├── StepTimedOut                        one attempt of a step ran past its timeout
    ├── NonRetryableError                   raise it in a step to stop its retries
    ├── QueryFailed                         a query handler raised
    ├── ResultTimeout (TimeoutError)        waiting for a result took longer than asked
    ├── WaitTimedOut (TimeoutError)         perdure.wait_for's durable deadline passed
    └── StoreError
        ├── StoreUnavailable                transient: a retry may help (busy, locked, I/O)
        ├── StoreIntegrityError             permanent: a retry will not help
        ├── IncompatibleDatabase            not a perdure database, or a newer schema
        └── StaleClaim                      this executor lost the instance (fencing)

Each class carries the HTTP status and CLI exit code it maps to, so the server and
the CLI turn errors into responses in one place.

``Suspend`` and ``ContinueAsNew`` are not errors: they are internal control flow
(unload an instance while it waits; start its next run) and derive from
``BaseException`` so ``except Exception`` in user code cannot swallow them.
"""

from __future__ import annotations


class PerdureError(Exception):
    """Root of every error perdure raises."""

    http_status: int = 500
    exit_code: int = 1


class InvalidArgument(PerdureError, ValueError):
    """A caller passed a value perdure cannot accept; nothing was recorded."""

    http_status = 400
    exit_code = 2


class RegistrationError(InvalidArgument):
    """A workflow or step name is registered twice, or is unknown."""


class NotFound(PerdureError, LookupError):
    """No instance with that id exists."""

    http_status = 404
    exit_code = 3


class Conflict(PerdureError):
    """An id (or idempotency key) already exists with other content."""

    http_status = 409
    exit_code = 4


class InvalidState(PerdureError):
    """The instance's current state forbids the requested action."""

    http_status = 409
    exit_code = 4


class OutsideWorkflow(PerdureError, RuntimeError):
    """A durable operation was called where no workflow is running."""


class NonDeterminismError(PerdureError):
    """Replay met an operation that differs from the one recorded at that position.

    The instance is parked; nothing is written. Fix the code (or use
    ``perdure.patched`` once it exists) and ``engine.resume`` the instance.
    """

    def __init__(self, position: int, expected: str, found: str) -> None:
        self.position = position
        self.expected = expected
        self.found = found
        super().__init__(
            f"replay mismatch at journal position {position}: history has {expected}, "
            f"the code now calls {found}; restore the old order or resume after a fix"
        )


class _RecordedError(PerdureError):
    """An error recorded in the journal: type name, message and traceback as text."""

    def __init__(self, what: str, error_type: str, message: str, traceback: str) -> None:
        self.error_type = error_type
        self.message = message
        self.traceback = traceback
        super().__init__(f"{what}: {error_type}: {message}")


class WorkflowFailed(_RecordedError):
    """The workflow raised; ``error_type``, ``message`` and ``traceback`` say what."""

    def __init__(self, workflow_id: str, error_type: str, message: str, traceback: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"workflow {workflow_id!r} failed", error_type, message, traceback)


class ActorCallFailed(_RecordedError):
    """An actor method raised; ``error_type``, ``message`` and ``traceback`` say what.

    The actor's state is what it was before the call: a failed invocation saves none.
    """

    def __init__(self, actor: str, method: str, error_type: str, message: str, traceback: str) -> None:
        self.actor = actor
        self.method = method
        super().__init__(f"actor {actor!r} method {method!r} failed", error_type, message, traceback)


class WorkflowCancelled(PerdureError):
    """The workflow was cancelled before it finished."""

    def __init__(self, workflow_id: str) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"workflow {workflow_id!r} was cancelled")


class WorkflowTimedOut(PerdureError):
    """The workflow ran past its execution timeout; recorded as its failure."""

    def __init__(self, workflow_id: str, timeout_at: float) -> None:
        self.workflow_id = workflow_id
        super().__init__(f"workflow {workflow_id!r} passed its execution deadline ({timeout_at:.3f})")


class StepFailed(_RecordedError):
    """A step failed for good: it raised a non-retryable error or ran out of attempts.

    Raised in the workflow at the step's call, the same way on first run and on
    replay, so workflow code that catches it stays deterministic.
    """

    def __init__(self, step: str, error_type: str, message: str, traceback: str, attempts: int) -> None:
        self.step = step
        self.attempts = attempts
        super().__init__(f"step {step!r} failed after {attempts} attempt(s)", error_type, message, traceback)


class StepTimedOut(PerdureError):
    """One attempt of a step ran longer than its ``timeout``; retried by its policy."""


class NonRetryableError(PerdureError):
    """Raise this (or a subclass) in a step to fail it at once, without retries."""


class QueryFailed(PerdureError):
    """A workflow's query handler raised; the message says what."""

    http_status = 422


class ResultTimeout(PerdureError, TimeoutError):
    """Waiting for an instance's result took longer than the timeout given."""


class WaitTimedOut(PerdureError, TimeoutError):
    """The deadline of ``perdure.wait_for`` passed while what it waited for was still waiting.

    Recorded in the journal: replay raises it at the same point.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"perdure.wait_for: still waiting after {timeout}s")


class StoreError(PerdureError):
    """The database failed; the subclass says whether a retry can help."""

    http_status = 503
    exit_code = 5


class StoreUnavailable(StoreError):
    """Transient: the database is busy, locked, or unreachable for now. Retry."""


class StoreIntegrityError(StoreError):
    """Permanent: the write contradicts recorded state. Retrying will not help."""

    http_status = 500


class IncompatibleDatabase(StoreError):
    """The database is not perdure's, or was made by a newer perdure."""

    http_status = 500
    exit_code = 6


class StaleClaim(StoreError):
    """This executor no longer owns the instance; its writes were refused (fencing)."""

    http_status = 409


class Suspend(BaseException):
    """Unloads a running instance until ``wake_at``, or until a message on ``topic``.

    Never seen by user code. ``wake_at=None`` waits for the message alone.
    """

    def __init__(self, wake_at: float | None, topic: str | None = None) -> None:
        self.wake_at = wake_at
        self.topic = topic
        super().__init__(wake_at, topic)


class WaitExpired(BaseException):
    """Raised at a durable wait inside ``perdure.wait_for`` once its deadline passed; the
    ``wait_for`` whose deadline it is turns it into ``WaitTimedOut``. A ``BaseException``
    like cancellation, so that ``except Exception`` in the awaited code does not stop it."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        super().__init__(deadline)


class ContinueAsNew(BaseException):
    """Ends the current run and starts the workflow again under the same id with ``input``.

    Raised by ``perdure.continue_as_new``; never seen by user code.
    """

    def __init__(self, input: bytes) -> None:  # noqa: A002 - the run's input
        self.input = input
        super().__init__()
