"""The Store protocol: executions, per-step transitions, events and leases, in the domain's words.

Above: the engine (writes, under a lease), the agent (claims), the CLI (reads,
cancel). Below: MemoryStore, SQLiteStore, and later PostgreSQL; all pass the same
contract suite (tests/contract/test_store.py).

Guarantees callers may rely on:
- `record_transition` returns once the state is durable (a dependent may start);
  `stage_transition` queues a state that becomes durable with the next durable write
  of the same store (used for `running`, which a crash may lose without harm: the
  step reruns, at least once, with the same idempotency key).
- Every write by a driver carries its `Lease`; a write whose fencing token is no
  longer the execution's current one is refused with `StaleLeaseError`, and nothing
  of it is applied. Each step transition and each execution status change appends
  one event, in the same transaction.
- Reads return copies.

The security records (secrets, registered workflows, API tokens with their grants,
the audit log) live in the same store, beside the executions, with no lease: they
are written by the CLI and the HTTP server, one atomic call each.

Agents coordinate through the store too: a named leader lease (`acquire_leadership`)
whose `term` grows every time it changes hands, and membership heartbeats.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from sire.model.execution import Execution, ExecutionStatus, StepState

#: The statuses `delete_executions` may remove.
FINISHED = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)


class Lease(NamedTuple):
    """The right to drive one execution until `expires_at`.

    `token` is the fencing token: it grows every time anyone acquires the lease, so a
    former owner's writes are recognisably stale. `cancel_requested` tells the driver
    that `sire execution cancel` asked it to stop (seen at the next renewal).
    """

    execution_id: str
    owner: str
    token: int
    expires_at: float
    cancel_requested: bool = False


class Event(NamedTuple):
    """One entry of an execution's append-only event log.

    `kind` is `execution` (status changes; `key` is None), `step` (transitions of
    step or item `key`; `data` holds what changed: error, attempts, next_attempt) or
    `log` (a line step `key`'s tool logged; `status` is its level, `data` holds
    `message`, `logger` and `attempt`).
    """

    seq: int
    execution_id: str
    at: float
    kind: str
    key: str | None
    status: str
    data: Mapping[str, Any] = {}


class LogEntry(NamedTuple):
    """One line a tool logged during a step's attempt, as `add_logs` stores it.

    `level` is an MCP log level (`debug` … `emergency`); `logger` names the source
    (the MCP notification's logger, or `stderr` for a stdio server's stderr).
    """

    at: float
    level: str
    message: str
    logger: str | None
    attempt: int


class SecretRecord(NamedTuple):
    """A stored secret: `value` is its ciphertext (the store never sees a plain value)."""

    name: str
    value: str
    created_at: float
    updated_at: float


class WorkflowVersion(NamedTuple):
    """One registered version of a workflow definition (versions count from 1)."""

    workflow_id: str
    version: int
    workflow_hash: str
    created_at: float
    created_by: str | None = None


class Grant(NamedTuple):
    """A role (`viewer`, `operator`, `admin`) on one workflow, or on all when None."""

    role: str
    workflow_id: str | None = None


class Token(NamedTuple):
    """An API token: only the hash of its secret part is stored."""

    id: str
    name: str
    token_hash: str
    grants: tuple[Grant, ...]
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None


class AuditEntry(NamedTuple):
    """One line of the audit log: who did (or was refused) what, on what."""

    seq: int
    at: float
    actor: str
    action: str
    target: str
    allowed: bool
    detail: Mapping[str, Any] = {}


class Leadership(NamedTuple):
    """The leader lease `name`, held by `owner` until `expires_at`.

    `term` is its fencing number: it grows every time the lease changes hands (or is
    taken again after it lapsed), so a former leader's renewal is recognisably stale.
    """

    name: str
    owner: str
    term: int
    expires_at: float


class Member(NamedTuple):
    """An agent that announced itself with `heartbeat_member`; `info` is JSON."""

    owner: str
    last_seen: float
    info: Mapping[str, Any] = {}


class Store(Protocol):
    """Persists executions.

    Raises `NotFoundError` for unknown ids, `StaleLeaseError` for fenced-off writes,
    `LeaseHeldError` when another driver holds a live lease, and `StoreError` for
    everything the environment gets wrong (unreadable, locked, full, newer schema).
    """

    async def create_execution(self, execution: Execution, definition: str) -> None:
        """Store a new execution with its initial step states and the workflow source.

        `definition` is the workflow's YAML text, stored once per `workflow_hash`.
        Inputs, outputs and step outputs must be JSON values.

        Raises:
            StoreError: an execution with that id exists.
        """
        ...

    async def get_execution(self, execution_id: str) -> Execution:
        """The execution with that id, its step states included."""
        ...

    async def get_definition(self, workflow_hash: str) -> str:
        """The workflow source stored under `workflow_hash`."""
        ...

    async def set_definition(self, lease: Lease, workflow_hash: str, definition: str) -> None:
        """Pin the execution to another definition (resume with `--definition`)."""
        ...

    async def list_executions(
        self,
        *,
        statuses: Collection[ExecutionStatus] | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        since: float | None = None,
        before: float | None = None,
    ) -> list[Execution]:
        """Executions newest first, without their step states.

        `since` and `before` bound `created_at` (`since <= created_at < before`).
        """
        ...

    async def list_events(self, execution_id: str, *, after: int = 0) -> list[Event]:
        """The execution's events with `seq > after`, oldest first."""
        ...

    def stage_transition(self, lease: Lease, key: str, state: StepState) -> None:
        """Queue a transition; it is written with the next durable write."""
        ...

    async def record_transition(self, lease: Lease, key: str, state: StepState) -> None:
        """Atomically replace the state of step (or item) `key`, with staged ones."""
        ...

    async def add_logs(self, lease: Lease, key: str, entries: Sequence[LogEntry]) -> None:
        """Append one `log` event per entry for step (or item) `key`, in order, atomically.

        Staged transitions are written first, so a step's logs follow its `running`.

        Raises:
            StaleLeaseError: the lease was taken over; nothing was written.
        """
        ...

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
        """Set the execution's status, and its outputs or error when it finishes.

        `data` (JSON-able) goes into the status event's data beside `error`: a drive's
        trace context rides on its `running` event. With `release`, the lease is given
        up in the same write (`release_lease`): a driver's last write costs one commit.
        """
        ...

    async def acquire_lease(self, execution_id: str, owner: str, ttl: float, now: float) -> Lease:
        """Take the lease of an execution that no one holds (or whose lease expired).

        Raises:
            LeaseHeldError: another owner holds a live lease.
            NotFoundError: no such execution.
        """
        ...

    async def renew_lease(self, lease: Lease, ttl: float, now: float) -> Lease:
        """Extend a lease still held; the result carries `cancel_requested`.

        Raises:
            StaleLeaseError: the lease was taken over.
        """
        ...

    async def release_lease(self, lease: Lease) -> None:
        """Give the lease up (the execution stays as it is, resumable)."""
        ...

    async def claim_executions(
        self, owner: str, ttl: float, now: float, *, limit: int, recover: bool = True
    ) -> list[Lease]:
        """Lease up to `limit` executions that are due.

        Due: `pending` ones, and (unless `recover` is False) `running`/`retrying` ones
        whose lease expired or was released and whose `next_attempt` (if any) has
        passed: the orphans of a driver that died, and runs waiting to retry. Oldest
        first. Rows another claimer holds locked are skipped, never waited for.
        """
        ...

    async def delete_executions(
        self,
        *,
        before: float,
        now: float,
        statuses: Collection[ExecutionStatus] = FINISHED,
        limit: int = 1000,
    ) -> list[str]:
        """Remove up to `limit` finished executions last updated before `before`.

        Oldest first, each with its steps and events, atomically; their ids. Only
        finished statuses are eligible (others in `statuses` are ignored), and an
        execution whose lease is live at `now` (a resume holds it) is left alone.
        Workflow definitions stay: they are shared by hash.
        """
        ...

    async def list_leases(self, now: float, *, owner: str | None = None) -> list[Lease]:
        """The live leases (expiring after `now`) on unfinished executions, oldest first.

        Only those of `owner` when given. The leader agent counts each member's load
        with it; a member finds the executions the leader claimed for it.
        """
        ...

    async def request_cancel(self, execution_id: str, now: float) -> Execution:
        """Ask for an execution to be cancelled.

        An execution no one drives is cancelled at once (its unfinished steps become
        `cancelled`, its error `cancelled`, and its fencing token moves on so a late
        driver is refused); a driven one is flagged and its driver cancels it.

        Raises:
            NotFoundError: no such execution.
            InvalidTransitionError: it has already finished.
        """
        ...

    # -- security records ---------------------------------------------------------------

    async def put_secret(self, name: str, value: str, now: float) -> None:
        """Create or replace secret `name`; `value` is already encrypted."""
        ...

    async def get_secrets(self) -> dict[str, str]:
        """Every secret's ciphertext by name."""
        ...

    async def list_secrets(self) -> list[SecretRecord]:
        """The secrets, by name, with their (encrypted) values."""
        ...

    async def delete_secret(self, name: str) -> bool:
        """Remove secret `name`; whether there was one."""
        ...

    async def register_workflow(
        self,
        workflow_id: str,
        workflow_hash: str,
        definition: str,
        now: float,
        created_by: str | None = None,
    ) -> WorkflowVersion:
        """Store a definition as the next version of `workflow_id`.

        A definition equal (by hash) to the latest version is not a new version: that
        latest version is returned.
        """
        ...

    async def get_workflow(self, workflow_id: str, version: int | None = None) -> WorkflowVersion:
        """A version of a registered workflow, the latest when `version` is None.

        Raises:
            NotFoundError: no such workflow or version.
        """
        ...

    async def list_workflows(self) -> list[WorkflowVersion]:
        """The latest version of every registered workflow, by id."""
        ...

    async def create_token(self, token: Token) -> None:
        """Store a new API token and its grants.

        Raises:
            StoreError: a token with that id or hash exists.
        """
        ...

    async def find_token(self, token_hash: str) -> Token:
        """The token whose secret hashes to `token_hash` (revoked or expired included).

        Raises:
            NotFoundError: none.
        """
        ...

    async def list_tokens(self) -> list[Token]:
        """Every token, oldest first."""
        ...

    async def revoke_token(self, token_id: str, now: float) -> bool:
        """Revoke a token; whether it existed and was not revoked already."""
        ...

    async def add_audit(
        self,
        at: float,
        actor: str,
        action: str,
        target: str,
        allowed: bool,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        """Append one audit entry; its `seq`, strictly increasing."""
        ...

    async def list_audit(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        """Audit entries with `seq > after`, oldest first."""
        ...

    # -- agents: leader lease and membership -------------------------------------------

    async def acquire_leadership(
        self, name: str, owner: str, ttl: float, now: float
    ) -> Leadership | None:
        """Take (or keep) the leader lease `name` until `now + ttl`; None if another holds it.

        Granted when no one holds it, it lapsed (`expires_at <= now`) or was released,
        or `owner` holds it already (then the term stays). Every other grant moves the
        term up by one; the first grant has term 1.
        """
        ...

    async def renew_leadership(self, leadership: Leadership, ttl: float, now: float) -> Leadership:
        """Extend the leader lease to `now + ttl` if its term and owner are still these.

        Raises:
            StaleLeaseError: the lease changed hands (or was released) since.
        """
        ...

    async def release_leadership(self, leadership: Leadership) -> None:
        """Give the leader lease up (a no-op when it changed hands); the term is kept."""
        ...

    async def get_leader(self, name: str) -> Leadership | None:
        """The leader lease `name` as stored (maybe lapsed); None if unheld or released."""
        ...

    async def heartbeat_member(self, owner: str, now: float, info: Mapping[str, Any]) -> None:
        """Record that agent `owner` is alive at `now`, with `info` (JSON) about it."""
        ...

    async def list_members(self, since: float = 0.0) -> list[Member]:
        """The agents last seen at or after `since`, by owner."""
        ...

    async def remove_member(self, owner: str) -> None:
        """Forget agent `owner` (it stopped cleanly)."""
        ...

    async def aclose(self) -> None:
        """Flush staged writes and release connections."""
        ...
