"""SQLiteStore, the async facade: each call becomes a job for the writer thread, awaited.

Above: the engine, the agent and the CLI, through the Store protocol (base.py).
Below: writer.py, whose thread runs the jobs of jobs.py; this module encodes
arguments (JSON, rows) on the loop, where an unencodable value is refused before
anything is queued, and keeps staged transitions until the next durable write.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import threading
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from sire.errors import StoreError
from sire.model.execution import Execution, ExecutionStatus, StepState
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
from sire.storage.sqlite import agents, logs, retention, security
from sire.storage.sqlite.jobs import EXECUTION_STATUS, Jobs, Transition
from sire.storage.sqlite.writer import Writer

T = TypeVar("T")

# Patterns, compiled on first use: rarely needed, and compiling costs start-up time.
_PRAGMA_NAME = r"[a-z_]+"
_PRAGMA_VALUE = r"-?\w+"
_SYNCHRONOUS = ("normal", "full")
_MIN_SQLITE = (3, 24, 0)  # upserts

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


async def open_sqlite(
    path: str | os.PathLike[str],
    *,
    synchronous: str = "normal",
    busy_timeout: float = 5.0,
    pragmas: Mapping[str, int | str] | None = None,
) -> SQLiteStore:
    """Open (creating it and its directory if need be) and migrate the database at `path`.

    Args:
        synchronous: `normal` (durable across a crash of Sire, not of the machine) or
            `full` (an fsync per commit: durable across power loss too).
        busy_timeout: seconds to wait for another process's write lock.
        pragmas: more `PRAGMA name = value` settings for the connection (e.g.
            `cache_size`), applied after Sire's own.

    Raises:
        StoreError: the file is not a Sire database, its schema is newer than this
            Sire, it is locked, or it cannot be created or read.
    """
    if synchronous.lower() not in _SYNCHRONOUS:
        raise ValueError(f"synchronous must be 'normal' or 'full', not {synchronous!r}")
    for name, value in (pragmas or {}).items():
        if not re.fullmatch(_PRAGMA_NAME, name) or not re.fullmatch(_PRAGMA_VALUE, str(value)):
            raise ValueError(f"invalid pragma {name} = {value!r}")
    target = Path(path)
    if sqlite3.sqlite_version_info < _MIN_SQLITE:
        raise StoreError(
            f"{target}: SQLite {sqlite3.sqlite_version} is too old; Sire needs 3.24 or newer"
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{target}: cannot create its directory ({exc.strerror})") from exc
    writer = Writer(target, synchronous.upper(), busy_timeout, dict(pragmas or {}))
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    threading.Thread(
        target=writer.run, args=(ready,), name=f"sire-sqlite {target.name}", daemon=True
    ).start()
    try:
        await ready
    except BaseException:
        writer.stop()  # should the thread have opened the file
        raise
    return SQLiteStore(writer)


#: How long a staged transition waits for a durable write to carry it before it is
#: written on its own.
STAGED_DELAY = 0.05


class SQLiteStore:
    """The Store in an SQLite file; open one with `open_sqlite`.

    Several stores (in one process or several) may share a file: SQLite's locks
    serialise their writes, and the fencing tokens keep drivers apart. `commits`
    counts the transactions this store committed (a group of jobs commits once).
    """

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._queue = writer.queue
        self._staged: list[Transition] = []
        self._flush_timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._stopped: asyncio.Future[None] | None = None
        # A store dropped without aclose() still lets its thread close the connection.
        weakref.finalize(self, writer.stop)

    @property
    def path(self) -> Path:
        return self._writer.path

    @property
    def commits(self) -> int:
        return self._writer.commits

    # -- executions ---------------------------------------------------------------------

    async def create_execution(self, execution: Execution, definition: str) -> None:
        eid = execution.id
        outputs = execution.outputs
        row = (
            eid,
            execution.workflow_id,
            execution.workflow_hash,
            str(execution.status),
            self._json(execution.inputs, f"execution {eid}: its inputs"),
            None if outputs is None else self._json(outputs, f"execution {eid}: its outputs"),
            execution.error,
            execution.workspace,
            execution.created_at,
            execution.updated_at,
        )
        steps = [self._step_row(eid, key, state) for key, state in execution.step_states.items()]
        await self._submit(Jobs.create, row, steps, execution.workflow_hash, definition)

    async def get_execution(self, execution_id: str) -> Execution:
        return await self._submit(Jobs.get, execution_id, write=False)

    async def get_definition(self, workflow_hash: str) -> str:
        return await self._submit(Jobs.get_definition, workflow_hash, write=False)

    async def set_definition(self, lease: Lease, workflow_hash: str, definition: str) -> None:
        await self._submit(
            Jobs.set_definition, lease.execution_id, lease.token, workflow_hash, definition
        )

    async def list_executions(
        self,
        *,
        statuses: Collection[ExecutionStatus] | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        since: float | None = None,
        before: float | None = None,
    ) -> list[Execution]:
        wanted: list[str | None] = []
        if statuses is not None:
            chosen = {str(s) for s in statuses}
            wanted = [s for s in EXECUTION_STATUS if s in chosen]
        wanted += [None] * (len(EXECUTION_STATUS) - len(wanted))
        params = (None if statuses is None else 1, *wanted, workflow_id, limit, since, before)
        return await self._submit(Jobs.list_executions, params, write=False)

    async def list_events(self, execution_id: str, *, after: int = 0) -> list[Event]:
        return await self._submit(Jobs.list_events, execution_id, after, write=False)

    # -- transitions --------------------------------------------------------------------

    def stage_transition(self, lease: Lease, key: str, state: StepState) -> None:
        # Kept here, not queued: the thread would commit it alone, a commit per step.
        # Usually the step's own completion carries it; a step that runs longer than
        # STAGED_DELAY gets it written on its own, so `execution show` says `running`.
        if self._closed:
            raise self._closed_error()
        self._staged.append(self._transition(lease, key, state))
        if self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(STAGED_DELAY, self._flush_staged_soon)

    def _flush_staged_soon(self) -> None:
        self._flush_timer = None
        staged = self._take_staged()
        if staged is None or self._closed:
            if staged:
                self._staged = staged + self._staged
            return
        flushed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Its errors (a full disk) surface on the next durable write: nothing awaits this.
        flushed.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.put((Jobs.flush, (), flushed, True, staged))

    async def record_transition(self, lease: Lease, key: str, state: StepState) -> None:
        transition = self._transition(lease, key, state)
        await self._submit(Jobs.record, transition, staged=self._take_staged())

    async def add_logs(self, lease: Lease, key: str, entries: Sequence[LogEntry]) -> None:
        eid = lease.execution_id
        encoded = [
            (
                entry.at,
                entry.level,
                self._json(
                    {"message": entry.message, "logger": entry.logger, "attempt": entry.attempt},
                    f"execution {eid}: a log line of step '{key}'",
                ),
            )
            for entry in entries
        ]
        await self._submit(
            logs.add_logs, eid, lease.token, key, encoded, staged=self._take_staged()
        )

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
        eid = lease.execution_id
        encoded = None if outputs is None else self._json(outputs, f"execution {eid}: outputs")
        event = {"error": error} if error else {}
        if data:
            event.update(data)
        event_data = self._json(event, f"execution {eid}: error") if event else "{}"
        await self._submit(
            Jobs.update,
            (str(status), encoded, error, eid, lease.token),
            event_data,
            release,
            staged=self._take_staged(),
        )

    # -- leases -------------------------------------------------------------------------

    async def acquire_lease(self, execution_id: str, owner: str, ttl: float, now: float) -> Lease:
        return await self._submit(Jobs.acquire, execution_id, owner, now + ttl, now)

    async def renew_lease(self, lease: Lease, ttl: float, now: float) -> Lease:
        return await self._submit(Jobs.renew, lease, now + ttl, staged=self._take_staged())

    async def release_lease(self, lease: Lease) -> None:
        await self._submit(
            Jobs.release, lease.execution_id, lease.token, staged=self._take_staged()
        )

    async def claim_executions(
        self, owner: str, ttl: float, now: float, *, limit: int, recover: bool = True
    ) -> list[Lease]:
        return await self._submit(Jobs.claim, owner, now, now + ttl, limit, recover)

    async def list_leases(self, now: float, *, owner: str | None = None) -> list[Lease]:
        return await self._submit(agents.list_leases, now, owner, write=False)

    async def request_cancel(self, execution_id: str, now: float) -> Execution:
        return await self._submit(Jobs.cancel, execution_id, now)

    # -- security records -----------------------------------------------------------------

    async def put_secret(self, name: str, value: str, now: float) -> None:
        await self._submit(security.put_secret, name, value, now)

    async def get_secrets(self) -> dict[str, str]:
        return {s.name: s.value for s in await self.list_secrets()}

    async def list_secrets(self) -> list[SecretRecord]:
        return await self._submit(security.list_secrets, write=False)

    async def delete_secret(self, name: str) -> bool:
        return await self._submit(security.delete_secret, name)

    async def register_workflow(
        self,
        workflow_id: str,
        workflow_hash: str,
        definition: str,
        now: float,
        created_by: str | None = None,
    ) -> WorkflowVersion:
        return await self._submit(
            security.register_workflow, workflow_id, workflow_hash, definition, now, created_by
        )

    async def get_workflow(self, workflow_id: str, version: int | None = None) -> WorkflowVersion:
        return await self._submit(security.get_workflow, workflow_id, version, write=False)

    async def list_workflows(self) -> list[WorkflowVersion]:
        return await self._submit(security.list_workflows, write=False)

    async def create_token(self, token: Token) -> None:
        await self._submit(security.create_token, token)

    async def find_token(self, token_hash: str) -> Token:
        return await self._submit(security.find_token, token_hash, write=False)

    async def list_tokens(self) -> list[Token]:
        return await self._submit(security.list_tokens, write=False)

    async def revoke_token(self, token_id: str, now: float) -> bool:
        return await self._submit(security.revoke_token, token_id, now)

    async def add_audit(
        self,
        at: float,
        actor: str,
        action: str,
        target: str,
        allowed: bool,
        detail: Mapping[str, Any] | None = None,
    ) -> int:
        encoded = self._json(dict(detail or {}), "the audit entry's detail")
        return await self._submit(security.add_audit, at, actor, action, target, allowed, encoded)

    async def list_audit(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        return await self._submit(security.list_audit, after, limit, write=False)

    # -- agents ---------------------------------------------------------------------------

    async def acquire_leadership(
        self, name: str, owner: str, ttl: float, now: float
    ) -> Leadership | None:
        return await self._submit(agents.acquire_leadership, name, owner, ttl, now)

    async def renew_leadership(self, leadership: Leadership, ttl: float, now: float) -> Leadership:
        return await self._submit(agents.renew_leadership, leadership, ttl, now)

    async def release_leadership(self, leadership: Leadership) -> None:
        await self._submit(agents.release_leadership, leadership)

    async def get_leader(self, name: str) -> Leadership | None:
        return await self._submit(agents.get_leader, name, write=False)

    async def heartbeat_member(self, owner: str, now: float, info: Mapping[str, Any]) -> None:
        encoded = self._json(dict(info), f"agent {owner}'s info")
        await self._submit(agents.heartbeat_member, owner, now, encoded)

    async def list_members(self, since: float = 0.0) -> list[Member]:
        return await self._submit(agents.list_members, since, write=False)

    async def remove_member(self, owner: str) -> None:
        await self._submit(agents.remove_member, owner)

    async def delete_executions(
        self,
        *,
        before: float,
        now: float,
        statuses: Collection[ExecutionStatus] = FINISHED,
        limit: int = 1000,
    ) -> list[str]:
        eligible = tuple(str(s) for s in statuses if s.finished)
        if not eligible:
            return []
        return await self._submit(retention.delete_executions, eligible, before, now, limit)

    async def aclose(self) -> None:
        """Write the staged transitions, stop the writer thread and close the file.

        Raises:
            StoreError: the staged transitions could not be written.
        """
        if self._stopped is None:
            self._closed = True
            if self._flush_timer is not None:
                self._flush_timer.cancel()
                self._flush_timer = None
            loop = asyncio.get_running_loop()
            staged = self._take_staged()
            flushed: asyncio.Future[None] | None = None
            if staged:
                flushed = loop.create_future()
                self._queue.put((Jobs.flush, (), flushed, True, staged))
            self._stopped = loop.create_future()
            self._writer.stop(self._stopped)
            await asyncio.shield(self._stopped)
            if flushed is not None:
                flushed.result()  # settled before `_stopped`: the thread works in order
        else:
            await asyncio.shield(self._stopped)

    # -- helpers ------------------------------------------------------------------------

    def _submit(
        self,
        op: Callable[..., T],
        *args: Any,
        write: bool = True,
        staged: list[Transition] | None = None,
    ) -> asyncio.Future[T]:
        if self._closed:
            raise self._closed_error()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((op, args, future, write, staged))
        return future

    def _closed_error(self) -> StoreError:
        return StoreError(f"{self._writer.path}: the store is closed")

    def _take_staged(self) -> list[Transition] | None:
        staged = self._staged
        if not staged:
            return None
        self._staged = []
        return staged

    def _transition(self, lease: Lease, key: str, state: StepState) -> Transition:
        eid = lease.execution_id
        row = self._step_row(eid, key, state)
        attempts, error, next_attempt = state.attempts, state.error, state.next_attempt
        if not error and next_attempt is None and type(attempts) is int:
            data = f'{{"attempts":{attempts}}}'  # the common case, without the encoder
        else:
            fields: dict[str, Any] = {"attempts": attempts}
            if error:
                fields["error"] = error
            if next_attempt is not None:
                fields["next_attempt"] = next_attempt
            data = self._json(fields, f"execution {eid}: step '{key}'")
        return (eid, lease.token, row, key, row[2], data)

    def _step_row(self, execution_id: str, key: str, state: StepState) -> tuple[Any, ...]:
        output, checkpoint = state.output, state.checkpoint
        if output is not None:
            output = self._json(output, f"execution {execution_id}: the output of step '{key}'")
        return (
            execution_id,
            key,
            str(state.status),
            output,
            state.error,
            state.attempts,
            state.next_attempt,
            state.started_at,
            state.finished_at,
            None if checkpoint is None else self._json(checkpoint, f"the checkpoint of '{key}'"),
            state.mocked,
        )

    def _json(self, value: object, what: str) -> str:
        try:
            return _encode(value)
        except (TypeError, ValueError) as exc:
            raise StoreError(
                f"{self._writer.path}: {what} cannot be stored as JSON ({exc})"
            ) from exc
