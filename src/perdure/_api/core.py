"""What the Engine's method groups (schedules, actors) use of the engine itself."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from perdure._api.decorators import Workflow
from perdure._api.handles import WorkflowHandle
from perdure._journal.writer import Writer
from perdure._model.definitions import Definition, Registry
from perdure._model.records import InstanceRow
from perdure._runtime.clock import Clock
from perdure._store.protocol import Store

if TYPE_CHECKING:
    from perdure._runtime.executor import Executor


class EngineCore(Protocol):
    """The parts of ``Engine`` its method groups use."""

    _store: Store
    _executor: Executor | None
    clock: Clock
    registry: Registry

    def _ready(self) -> Writer: ...

    def _definition(self, workflow: Workflow[Any, Any] | str) -> Definition: ...

    async def start(
        self,
        workflow: Workflow[Any, Any] | str,
        /,
        *args: Any,
        id: str | None = None,  # noqa: A002
        execution_timeout: float | None = None,
        **kwargs: Any,
    ) -> WorkflowHandle[Any]: ...

    async def _wait(self, instance_id: str, timeout: float | None, *, check: bool = True) -> InstanceRow: ...
