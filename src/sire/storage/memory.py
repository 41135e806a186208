"""MemoryStore: the Store in a dict, for tests and for runs that need no durability.

The reference implementation of the contract: SQLite and PostgreSQL must behave
exactly like it (tests/contract/test_store.py runs the same suite on each).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from sire.errors import (
    InvalidTransitionError,
    LeaseHeldError,
    NotFoundError,
    StaleLeaseError,
    StoreError,
)
from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus
from sire.storage.base import (
    FINISHED,
    AuditEntry,
    Event,
    Leadership,
    Lease,
    LogEntry,
    Member,
    SecretRecord,
    Token,
    WorkflowVersion,
)

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
        self._secrets: dict[str, SecretRecord] = {}
        self._workflows: dict[str, list[WorkflowVersion]] = {}
        self._tokens: dict[str, Token] = {}
        self._audit: list[AuditEntry] = []
        self._leaders: dict[str, tuple[str | None, int, float]] = {}
        self._members: dict[str, Member] = {}

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
        since: float | None = None,
        before: float | None = None,
    ) -> list[Execution]:
        found = [
            row.execution
            for row in self._rows.values()
            if (statuses is None or row.execution.status in statuses)
            and (workflow_id is None or row.execution.workflow_id == workflow_id)
            and (since is None or row.execution.created_at >= since)
            and (before is None or row.execution.created_at < before)
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

    async def add_logs(self, lease: Lease, key: str, entries: Sequence[LogEntry]) -> None:
        self._flush()
        self._fenced(lease)
        for entry in entries:
            data = {"message": entry.message, "logger": entry.logger, "attempt": entry.attempt}
            self._event(lease.execution_id, "log", key, entry.level, data, entry.at)

    async def update_execution(
        self,
        lease: Lease,
        status: ExecutionStatus,
        *,
        outputs: Mapping[str, Any] | None = None,
        error: str | None = None,
        data: Mapping[str, Any] | None = None,
        release: bool = False,
    ) -> None:
        self._flush()
        row = self._fenced(lease)
        execution = row.execution
        execution.status = status
        if outputs is not None:
            execution.outputs = copy.deepcopy(dict(outputs))
        execution.error = error
        execution.updated_at = time.time()
        event = {"error": error} if error else {}
        if data:
            event.update(copy.deepcopy(dict(data)))
        self._event(execution.id, "execution", None, status, event)
        if release:
            row.lease_owner = None
            row.lease_expires_at = None

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
        self, owner: str, ttl: float, now: float, *, limit: int, recover: bool = True
    ) -> list[Lease]:
        due = [
            row
            for row in self._rows.values()
            if (recover or row.execution.status is ExecutionStatus.PENDING) and _due(row, now)
        ]
        due.sort(key=lambda r: (r.execution.created_at, r.execution.id))
        return [self._grant(row, owner, now + ttl) for row in due[:limit]]

    async def list_leases(self, now: float, *, owner: str | None = None) -> list[Lease]:
        rows = sorted(
            (
                row
                for row in self._rows.values()
                if not row.execution.status.finished
                and row.lease_owner is not None
                and (owner is None or row.lease_owner == owner)
                and row.lease_expires_at is not None
                and row.lease_expires_at > now
            ),
            key=lambda row: (row.execution.created_at, row.execution.id),
        )
        return [
            Lease(r.execution.id, r.lease_owner, r.token, r.lease_expires_at, r.cancel_requested)
            for r in rows
            if r.lease_owner is not None and r.lease_expires_at is not None
        ]

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

    # -- security records -------------------------------------------------------

    async def put_secret(self, name: str, value: str, now: float) -> None:
        old = self._secrets.get(name)
        self._secrets[name] = SecretRecord(name, value, old.created_at if old else now, now)

    async def get_secrets(self) -> dict[str, str]:
        return {name: record.value for name, record in self._secrets.items()}

    async def list_secrets(self) -> list[SecretRecord]:
        return [self._secrets[name] for name in sorted(self._secrets)]

    async def delete_secret(self, name: str) -> bool:
        return self._secrets.pop(name, None) is not None

    async def register_workflow(
        self,
        workflow_id: str,
        workflow_hash: str,
        definition: str,
        now: float,
        created_by: str | None = None,
    ) -> WorkflowVersion:
        versions = self._workflows.setdefault(workflow_id, [])
        if versions and versions[-1].workflow_hash == workflow_hash:
            return versions[-1]
        self._definitions.setdefault(workflow_hash, definition)
        version = WorkflowVersion(workflow_id, len(versions) + 1, workflow_hash, now, created_by)
        versions.append(version)
        return version

    async def get_workflow(self, workflow_id: str, version: int | None = None) -> WorkflowVersion:
        versions = self._workflows.get(workflow_id) or []
        if version is None and versions:
            return versions[-1]
        if version is not None and 1 <= version <= len(versions):
            return versions[version - 1]
        which = f"workflow '{workflow_id}'" + ("" if version is None else f" version {version}")
        raise NotFoundError(f"no registered {which}")

    async def list_workflows(self) -> list[WorkflowVersion]:
        return [self._workflows[w][-1] for w in sorted(self._workflows) if self._workflows[w]]

    async def create_token(self, token: Token) -> None:
        if token.id in self._tokens or any(
            t.token_hash == token.token_hash for t in self._tokens.values()
        ):
            raise StoreError(f"a token with id {token.id} or the same secret exists")
        grants = tuple(sorted(set(token.grants), key=lambda g: (g.role, g.workflow_id or "")))
        self._tokens[token.id] = token._replace(grants=grants)

    async def find_token(self, token_hash: str) -> Token:
        for token in self._tokens.values():
            if token.token_hash == token_hash:
                return token
        raise NotFoundError("no such API token")

    async def list_tokens(self) -> list[Token]:
        return sorted(self._tokens.values(), key=lambda t: (t.created_at, t.id))

    async def revoke_token(self, token_id: str, now: float) -> bool:
        token = self._tokens.get(token_id)
        if token is None or token.revoked_at is not None:
            return False
        self._tokens[token_id] = token._replace(revoked_at=now)
        return True

    async def add_audit(
        self,
        at: float,
        actor: str,
        action: str,
        target: str,
        allowed: bool,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        seq = len(self._audit) + 1
        entry = AuditEntry(
            seq, at, actor, action, target, allowed, copy.deepcopy(dict(detail or {}))
        )
        self._audit.append(entry)
        return seq

    async def list_audit(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        return copy.deepcopy(self._audit[after : after + limit])

    # -- agents -----------------------------------------------------------------------

    async def acquire_leadership(
        self, name: str, owner: str, ttl: float, now: float
    ) -> Leadership | None:
        holder, term, expires_at = self._leaders.get(name, (None, 0, 0.0))
        if holder == owner and expires_at > now:
            pass  # kept: same term
        elif holder is not None and expires_at > now:
            return None
        else:
            term += 1
        self._leaders[name] = (owner, term, now + ttl)
        return Leadership(name, owner, term, now + ttl)

    async def renew_leadership(self, leadership: Leadership, ttl: float, now: float) -> Leadership:
        name = leadership.name
        holder, term, _ = self._leaders.get(name, (None, 0, 0.0))
        if holder != leadership.owner or term != leadership.term:
            raise StaleLeaseError(
                f"leader lease '{name}': term {leadership.term} of {leadership.owner} is stale "
                f"(current {term}); another agent took over"
            )
        self._leaders[name] = (holder, term, now + ttl)
        return leadership._replace(expires_at=now + ttl)

    async def release_leadership(self, leadership: Leadership) -> None:
        holder, term, _ = self._leaders.get(leadership.name, (None, 0, 0.0))
        if holder == leadership.owner and term == leadership.term:
            self._leaders[leadership.name] = (None, term, 0.0)

    async def get_leader(self, name: str) -> Leadership | None:
        holder, term, expires_at = self._leaders.get(name, (None, 0, 0.0))
        return None if holder is None else Leadership(name, holder, term, expires_at)

    async def heartbeat_member(self, owner: str, now: float, info: Mapping[str, Any]) -> None:
        self._members[owner] = Member(owner, now, copy.deepcopy(dict(info)))

    async def list_members(self, since: float = 0.0) -> list[Member]:
        found = [m for m in self._members.values() if m.last_seen >= since]
        return copy.deepcopy(sorted(found))

    async def remove_member(self, owner: str) -> None:
        self._members.pop(owner, None)

    async def delete_executions(
        self,
        *,
        before: float,
        now: float,
        statuses: Collection[ExecutionStatus] = FINISHED,
        limit: int = 1000,
    ) -> list[str]:
        self._flush()
        eligible = {s for s in statuses if s.finished}
        rows = sorted(
            (
                row
                for row in self._rows.values()
                if row.execution.status in eligible
                and row.execution.updated_at < before
                and (row.lease_expires_at is None or row.lease_expires_at <= now)
            ),
            key=lambda row: (row.execution.updated_at, row.execution.id),
        )[:limit]
        ids = [row.execution.id for row in rows]
        gone = set(ids)
        for id_ in ids:
            del self._rows[id_]
        self._events = [e for e in self._events if e.execution_id not in gone]
        return ids

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
        seq = self._events[-1].seq + 1 if self._events else 1
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
