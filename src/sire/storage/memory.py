"""MemoryStore: executions kept in this process; the default of `sire run` until SQLite lands."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

from sire.errors import NotFoundError
from sire.model.execution import Execution, ExecutionStatus, StepState


class MemoryStore:
    """A Store in a dict. Transitions are atomic because they are single assignments."""

    def __init__(self) -> None:
        self._executions: dict[str, Execution] = {}

    async def create_execution(self, execution: Execution) -> None:
        self._executions[execution.id] = copy.deepcopy(execution)

    async def get_execution(self, execution_id: str) -> Execution:
        return copy.deepcopy(self._get(execution_id))

    async def record_transition(self, execution_id: str, key: str, state: StepState) -> None:
        execution = self._get(execution_id)
        execution.step_states[key] = state
        execution.updated_at = time.time()

    async def update_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        *,
        outputs: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        execution = self._get(execution_id)
        execution.status = status
        if outputs is not None:
            execution.outputs = dict(outputs)
        execution.error = error
        execution.updated_at = time.time()

    async def aclose(self) -> None:
        return None

    def _get(self, execution_id: str) -> Execution:
        try:
            return self._executions[execution_id]
        except KeyError:
            raise NotFoundError(f"no execution '{execution_id}'") from None
