"""The Store protocol: executions and per-step transitions, in the domain's words.

Above: the engine (and the CLI for reads). Below: an implementation. Callers may
rely on `record_transition` being durable when it returns, so a step's output is
stored before any dependent starts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from sire.model.execution import Execution, ExecutionStatus, StepState


class Store(Protocol):
    """Persists executions. Raises `NotFoundError` for unknown ids, `StoreError` otherwise."""

    async def create_execution(self, execution: Execution) -> None:
        """Store a new execution with its step states."""
        ...

    async def get_execution(self, execution_id: str) -> Execution:
        """The execution with that id, step states included (a copy)."""
        ...

    async def record_transition(self, execution_id: str, key: str, state: StepState) -> None:
        """Atomically replace the state of step (or item) `key`."""
        ...

    async def update_execution(
        self,
        execution_id: str,
        status: ExecutionStatus,
        *,
        outputs: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Set the execution's status, and its outputs or error when it finishes."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...
