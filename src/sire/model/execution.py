"""Execution state: one run of a workflow, and the state of each of its steps (DESIGN §4)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NamedTuple


class ExecutionStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED_EXECUTION


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in _FINISHED_STEP


_FINISHED_EXECUTION = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)
_FINISHED_STEP = frozenset(
    {StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED}
)


class StepState(NamedTuple):
    """The state of one step, or of one item of a `for_each` step (key `step/index`).

    Each transition replaces the whole value, and a store writes it atomically.
    Times are seconds since the epoch. A NamedTuple rather than a frozen dataclass:
    equally immutable, and built in a fifth of the time on the engine's hot path.
    """

    status: StepStatus = StepStatus.PENDING
    output: Any = None
    error: str | None = None
    attempts: int = 0
    next_attempt: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    #: what a running attempt saved to pick up after a crash (e.g. a remote task id).
    checkpoint: Mapping[str, Any] | None = None
    #: the outcome came from a mock file (`--mock-file`), not from the tool.
    mocked: bool = False


class Execution:
    """One run of a workflow. `step_states` is keyed by step id, and `id/index` for items.

    Mutable: the engine updates status and step states as it drives. A plain slotted
    class (not a dataclass, whose creation costs ~2 ms at every start of `sire`).
    """

    __slots__ = (
        "created_at",
        "error",
        "id",
        "inputs",
        "outputs",
        "status",
        "step_states",
        "updated_at",
        "workflow_hash",
        "workflow_id",
        "workspace",
    )

    def __init__(
        self,
        id: str,
        workflow_id: str,
        workflow_hash: str,
        status: ExecutionStatus = ExecutionStatus.PENDING,
        inputs: dict[str, Any] | None = None,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
        workspace: str = ".",
        step_states: dict[str, StepState] | None = None,
        created_at: float | None = None,
        updated_at: float | None = None,
    ) -> None:
        now = time.time()
        self.id = id
        self.workflow_id = workflow_id
        self.workflow_hash = workflow_hash
        self.status = status
        self.inputs: dict[str, Any] = {} if inputs is None else inputs
        self.outputs = outputs
        self.error = error
        self.workspace = workspace
        self.step_states: dict[str, StepState] = {} if step_states is None else step_states
        self.created_at = now if created_at is None else created_at
        self.updated_at = now if updated_at is None else updated_at

    def __repr__(self) -> str:
        return (
            f"Execution(id={self.id!r}, workflow_id={self.workflow_id!r}, status={self.status!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Execution):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    __hash__ = None  # type: ignore[assignment]


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_execution_id(now: float | None = None) -> str:
    """A ULID: 26 characters, sortable by creation time, 80 random bits."""
    millis = int((time.time() if now is None else now) * 1000)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, digit = divmod(value, 32)
        chars.append(_CROCKFORD[digit])
    return "".join(reversed(chars))
