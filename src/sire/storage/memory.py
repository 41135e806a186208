"""MemoryStore: the Store in a dict, for tests and for runs that need no durability.

The reference implementation of the contract: SQLite and PostgreSQL must behave
exactly like it (tests/contract/test_store.py runs the same suite on each).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Collection, Mapping
from typing import Any

from sire.errors import (
    InvalidTransitionError,
    LeaseHeldError,
    NotFoundError,
    StaleLeaseError,
    StoreError,
)
from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus
from sire.storage.base import Event, Lease

_DRIVEN = (ExecutionStatus.RUNNING, ExecutionStatus.RETRYING)


class _Row:
    __slots__ = ("cancel_requested", "execution", "lease_expires_at", "lease_owner", "token")

    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.token = 0
        self.lease_owner: str | None = None
        self.lease_expires_at: float | None = None
        self.cancel_requested = False


class MemoryStore:
    """A Store in a dict. Every write is atomic because it is applied in one step."""

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._definitions: dict[str, str] = {}
        self._events: list[Event] = []
        self._staged: list[tuple[Lease, str, StepState, float]] = []

    # -- executions -------------------------------------------------------------

    async def create_execution(self, execution: Execution, definition: str) -> None:
        if execution.id in self._rows:
            raise StoreError(f"execution {execution.id} already exists")
        self._definitions.setdefault(execution.workflow_hash, definition)
        self._rows[execution.id] = _Row(copy.deepcopy(execution))
        self._event(execution.id, "execution", None, execution.status, {})

    async def get_execution(self, execution_id: str) -> Execution:
        return copy.deepcopy(self._row(execution_id).execution)

    async def get_definition(self, workflow_hash: str) -> str:
        try:
            return self._definitions[workflow_hash]
        except KeyError:
            raise NotFoundError(f"no workflow definition with hash {workflow_hash}") from None

    async def set_definition(self, lease: Lease, workflow_hash: str, definition: str) -> None:
        row = self._fenced(lease)
        self._definitions.setdefault(workflow_hash, definition)
        row.execution.workflow_hash = workflow_hash

    async def list_executions(
        self,
        *,
        statuses: Collection[ExecutionStatus] | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
    ) -> list[Execution]:
        found = [
            row.execution
            for row in self._rows.values()
            if (statuses is None or row.execution.status in statuses)
            and (workflow_id is None or row.execution.workflow_id == workflow_id)
        ]
        found.sort(key=lambda e: (e.created_at, e.id), reverse=True)
        return [_summary(e) for e in found[:limit]]

    async def list_events(self, execution_id: str, *, after: int = 0) -> list[Event]:
        self._row(execution_id)
        return [e for e in self._events if e.execution_id == execution_id and e.seq > after]

    # -- transitions --------------------------------------------------------------

    def stage_transition(self, lease: Lease, key: str, state: StepState) -> None:
        self._staged.append((lease, key, state, time.time()))

    async def record_transition(self, lease: Lease, key: str, state: StepState) -> None:
        self._flush()
        self._apply(lease, key, state)

    async def update_execution(
        self,
        lease: Lease,
        status: ExecutionStatus,
        *,
        outputs: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        self._flush()
        row = self._fenced(lease)
        execution = row.execution
        execution.status = status
        if outputs is not None:
            execution.outputs = copy.deepcopy(dict(outputs))
        execution.error = error
        execution.updated_at = time.time()
        data = {"error": error} if error else {}
        self._event(execution.id, "execution", None, status, data)

    # -- leases ---------------------------------------------------------------------

    async def acquire_lease(self, execution_id: str, owner: str, ttl: float, now: float) -> Lease:
        row = self._row(execution_id)
        if (
            row.lease_owner is not None
            and row.lease_owner != owner
            and (row.lease_expires_at or 0) > now
        ):
            raise LeaseHeldError(f"execution {execution_id} is being driven by {row.lease_owner}")
        return self._grant(row, owner, now + ttl)

    async def renew_lease(self, lease: Lease, ttl: float, now: float) -> Lease:
        self._flush()
        row = self._fenced(lease)
        row.lease_expires_at = now + ttl
        return Lease(lease.execution_id, lease.owner, row.token, now + ttl, row.cancel_requested)

    async def release_lease(self, lease: Lease) -> None:
        self._flush()
        row = self._row(lease.execution_id)
        if row.token == lease.token:
            row.lease_owner = None
            row.lease_expires_at = None

    async def claim_executions(
        self, owner: str, ttl: float, now: float, *, limit: int
    ) -> list[Lease]:
        due = [row for row in self._rows.values() if _due(row, now)]
        due.sort(key=lambda r: (r.execution.created_at, r.execution.id))
        return [self._grant(row, owner, now + ttl) for row in due[:limit]]

    async def request_cancel(self, execution_id: str, now: float) -> Execution:
        row = self._row(execution_id)
        execution = row.execution
        if execution.status.finished:
            raise InvalidTransitionError(
                f"execution {execution_id} is already {execution.status}; nothing to cancel"
            )
        if row.lease_owner is not None and (row.lease_expires_at or 0) > now:
            row.cancel_requested = True
            return copy.deepcopy(execution)
        for key, state in list(execution.step_states.items()):
            if not state.status.finished:
                cancelled = state._replace(status=StepStatus.CANCELLED, finished_at=now)
                execution.step_states[key] = cancelled
                self._event(execution_id, "step", key, StepStatus.CANCELLED, {})
        execution.status = ExecutionStatus.CANCELLED
        execution.error = "cancelled"
        execution.updated_at = now
        row.token += 1  # a late write from a driver that outlived its lease is refused
        self._event(execution_id, "execution", None, ExecutionStatus.CANCELLED, {})
        return copy.deepcopy(execution)

    async def aclose(self) -> None:
        self._flush()

    # -- helpers --------------------------------------------------------------------

    def _row(self, execution_id: str) -> _Row:
        try:
            return self._rows[execution_id]
        except KeyError:
            raise NotFoundError(f"no execution '{execution_id}'") from None

    def _fenced(self, lease: Lease) -> _Row:
        row = self._row(lease.execution_id)
        if row.token != lease.token:
            raise StaleLeaseError(
                f"execution {lease.execution_id}: lease token {lease.token} is stale "
                f"(current {row.token}); another driver took over"
            )
        return row

    def _grant(self, row: _Row, owner: str, expires_at: float) -> Lease:
        row.token += 1
        row.lease_owner = owner
        row.lease_expires_at = expires_at
        row.cancel_requested = row.cancel_requested and row.execution.status in _DRIVEN
        return Lease(row.execution.id, owner, row.token, expires_at, row.cancel_requested)

    def _flush(self) -> None:
        staged, self._staged = self._staged, []
        for lease, key, state, at in staged:
            try:
                self._apply(lease, key, state, at)
            except StaleLeaseError:
                continue  # staged writes of a fenced-off driver are dropped, as in SQL

    def _apply(self, lease: Lease, key: str, state: StepState, at: float | None = None) -> None:
        """Write one transition; `at` is when it happened (staged ones happened earlier)."""
        row = self._fenced(lease)
        at = time.time() if at is None else at
        row.execution.step_states[key] = state
        row.execution.updated_at = at
        data: dict[str, Any] = {"attempts": state.attempts}
        if state.error:
            data["error"] = state.error
        if state.next_attempt is not None:
            data["next_attempt"] = state.next_attempt
        self._event(lease.execution_id, "step", key, state.status, data, at)

    def _event(
        self,
        execution_id: str,
        kind: str,
        key: str | None,
        status: str,
        data: dict[str, Any],
        at: float | None = None,
    ) -> None:
        seq = len(self._events) + 1
        at = time.time() if at is None else at
        self._events.append(Event(seq, execution_id, at, kind, key, str(status), data))


def _due(row: _Row, now: float) -> bool:
    """Pending; or running with no live lease; or retrying, lease free, first retry due."""
    execution = row.execution
    lease_free = row.lease_owner is None or (row.lease_expires_at or 0) <= now
    if execution.status is ExecutionStatus.PENDING or execution.status is ExecutionStatus.RUNNING:
        return lease_free
    if execution.status is not ExecutionStatus.RETRYING or not lease_free:
        return False
    waits = [
        s.next_attempt
        for s in execution.step_states.values()
        if s.status is StepStatus.RETRYING and s.next_attempt is not None
    ]
    return not waits or min(waits) <= now


def _summary(execution: Execution) -> Execution:
    summary = copy.copy(execution)
    summary.step_states = {}
    summary.inputs = copy.deepcopy(execution.inputs)
    summary.outputs = copy.deepcopy(execution.outputs)
    return summary
