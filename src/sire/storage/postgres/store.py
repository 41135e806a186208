"""PostgresStore: the Store on PostgreSQL, through psycopg 3 and an async connection pool.

Above: the engine, the agent, the CLI and the server, through the Store protocol
(base.py). Below: `psycopg_pool.AsyncConnectionPool` (autocommit connections) and
the SQL of queries.py. A step transition is one statement, so one transaction and
one round trip; staged transitions ride the next durable write of their execution
in the same transaction (with a transition: one call of the server-side function
`sire_transitions` of migration 0003, the batch as one JSON text; before another
write: a pipeline, one round trip still), or are written on their own after
STAGED_DELAY. Writes that carry staged transitions of an execution are
ordered before that execution's later writes, so a step's `running` never lands
after its `completed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from typing import Any

import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool

from sire.errors import (
    InvalidTransitionError,
    LeaseHeldError,
    NotFoundError,
    SireError,
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
from sire.storage.postgres import agents, retention, security
from sire.storage.postgres import queries as Q
from sire.storage.postgres.schema import migrate, redact, store_error

#: How long a staged transition waits for a durable write to carry it before it is
#: written on its own.
STAGED_DELAY = 0.05

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
STEP_STATUS = {s.value: s for s in StepStatus}
EXECUTION_STATUS = {s.value: s for s in ExecutionStatus}

Conn = psycopg.AsyncConnection[Any]

#: A step transition as the store stages and writes it: the parameters of Q.TRANSITION
#: (`_transition`); `_element` makes it an element of Q.TRANSITIONS' batch.
Transition = tuple[Any, ...]


async def open_postgres(
    url: str, *, min_size: int = 1, max_size: int = 10, wait: float = 10.0
) -> PostgresStore:
    """Connect to the database at `url` (a libpq URL), migrate it, and open a pool.

    Args:
        min_size, max_size: connections the pool keeps open, and opens at most.
        wait: seconds to wait for a connection (at start, and from the pool).

    Raises:
        StoreError: the server cannot be reached, refuses the login, or holds a
            schema newer than this Sire.
    """
    where = redact(url)
    try:
        conn = await psycopg.AsyncConnection.connect(
            url, autocommit=True, connect_timeout=max(1, int(wait))
        )
        async with conn:
            await migrate(conn, where)
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=wait,
            kwargs={"autocommit": True},
            open=False,
            name="sire",
        )
        await pool.open(wait=True, timeout=wait)
    except SireError:
        raise
    except Exception as exc:
        raise store_error(where, exc) from exc
    return PostgresStore(pool, where)


class PostgresStore:
    """The Store in a PostgreSQL database; open one with `open_postgres`.

    Any number of stores, in any number of processes and hosts, may share a database:
    row locks serialise their writes, `FOR UPDATE SKIP LOCKED` keeps claimers apart,
    and the fencing tokens keep drivers apart.
    """

    def __init__(self, pool: AsyncConnectionPool[Conn], where: str) -> None:
        self._pool = pool
        self.where = where
        self._staged: dict[str, list[Transition]] = {}  # by execution id, in order
        self._carriers: dict[str, asyncio.Future[None]] = {}  # writes carrying staged ones
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        self._closed = False

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
        count = len(execution.step_states)
        steps = [
            (*self._step_row(eid, key, state), i - count)
            for i, (key, state) in enumerate(execution.step_states.items())
        ]
        event = (eid, time.time(), "execution", None, row[3], "{}")
        async with self._connection() as conn:
            try:
                async with conn.transaction():
                    await conn.execute(Q.PUT_DEFINITION, (execution.workflow_hash, definition))
                    await conn.execute(Q.PUT_EXECUTION, row)
                    if steps:
                        async with conn.cursor() as cursor:
                            await cursor.executemany(Q.PUT_STEP, steps)
                    await conn.execute(Q.ADD_EVENT, event)
            except psycopg.errors.UniqueViolation:
                raise StoreError(f"execution {eid} already exists") from None

    async def get_execution(self, execution_id: str) -> Execution:
        async with self._connection() as conn:
            cursor = await conn.execute(Q.GET_EXECUTION, (execution_id,))
            row = await cursor.fetchone()
            if row is None:
                raise not_found(execution_id)
            execution = _execution(row)
            cursor = await conn.execute(Q.GET_STEPS, (execution_id,))
            execution.step_states = {
                key: StepState(
                    STEP_STATUS[status],
                    output,
                    error,
                    attempts,
                    next_attempt,
                    started_at,
                    finished_at,
                    checkpoint,
                    bool(mocked),
                )
                for (
                    key,
                    status,
                    output,
                    error,
                    attempts,
                    next_attempt,
                    started_at,
                    finished_at,
                    checkpoint,
                    mocked,
                ) in await cursor.fetchall()
            }
            return execution

    async def get_definition(self, workflow_hash: str) -> str:
        async with self._connection() as conn:
            cursor = await conn.execute(Q.GET_DEFINITION, (workflow_hash,))
            row = await cursor.fetchone()
        if row is None:
            raise NotFoundError(f"no workflow definition with hash {workflow_hash}")
        source: str = row[0]
        return source

    async def set_definition(self, lease: Lease, workflow_hash: str, definition: str) -> None:
        eid = lease.execution_id
        params = (workflow_hash, eid, lease.token, workflow_hash, definition)
        async with self._connection() as conn:
            cursor = await conn.execute(Q.SET_DEFINITION, params)
            row = await cursor.fetchone()
            if not row or not row[0]:
                raise await self._stale(conn, eid, lease.token)

    async def list_executions(
        self,
        *,
        statuses: Collection[ExecutionStatus] | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
        since: float | None = None,
        before: float | None = None,
    ) -> list[Execution]:
        params = {
            "statuses": None if statuses is None else [str(s) for s in statuses],
            "workflow_id": workflow_id,
            "limit": limit,
            "since": since,
            "before": before,
        }
        async with self._connection() as conn:
            cursor = await conn.execute(Q.LIST_EXECUTIONS, params)
            return [_execution(row) for row in await cursor.fetchall()]

    async def list_events(self, execution_id: str, *, after: int = 0) -> list[Event]:
        async with self._connection() as conn:
            cursor = await conn.execute(Q.LIST_EVENTS, (execution_id, after))
            rows = await cursor.fetchall()
            if not rows:
                await self._lease_row(conn, execution_id)  # unknown: NotFoundError
        return [
            Event(seq, execution_id, at, kind, key, status, data)
            for seq, at, kind, key, status, data in rows
        ]

    # -- transitions --------------------------------------------------------------------

    def stage_transition(self, lease: Lease, key: str, state: StepState) -> None:
        if self._closed:
            raise self._closed_error()
        transition = self._transition(lease, key, state, time.time())
        self._staged.setdefault(lease.execution_id, []).append(transition)
        if self._flush_timer is None:
            loop = asyncio.get_running_loop()
            self._flush_timer = loop.call_later(STAGED_DELAY, self._flush_staged_soon)

    async def record_transition(self, lease: Lease, key: str, state: StepState) -> None:
        transition = self._transition(lease, key, state, time.time())
        if not await self._write(lease.execution_id, Q.TRANSITION, transition):
            raise await self._stale_apart(lease)

    async def add_logs(self, lease: Lease, key: str, entries: Sequence[LogEntry]) -> None:
        eid = lease.execution_id
        data = [
            self._json(
                {"message": e.message, "logger": e.logger, "attempt": e.attempt},
                f"execution {eid}: a log line of step '{key}'",
            )
            for e in entries
        ]
        params = (
            time.time(),
            eid,
            lease.token,
            key,
            [e.at for e in entries],
            [e.level for e in entries],
            data,
        )
        row = await self._write(eid, Q.ADD_LOGS, params, fetch=True)
        if not row or not row[0]:
            raise await self._stale_apart(lease)

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
        event: dict[str, Any] = {"error": error} if error else {}
        if data:
            event.update(data)
        event_data = self._json(event, f"execution {eid}: error") if event else "{}"
        params = (
            str(status),
            encoded,
            error,
            time.time(),
            release,
            release,
            eid,
            lease.token,
            event_data,
        )
        if not await self._write(eid, Q.UPDATE_EXECUTION, params):
            raise await self._stale_apart(lease)

    # -- leases -------------------------------------------------------------------------

    async def acquire_lease(self, execution_id: str, owner: str, ttl: float, now: float) -> Lease:
        params = {"id": execution_id, "owner": owner, "expires_at": now + ttl, "now": now}
        async with self._connection() as conn:
            cursor = await conn.execute(Q.ACQUIRE, params)
            row = await cursor.fetchone()
            if row is None:
                _, holder, _, _, _ = await self._lease_row(conn, execution_id)
                raise LeaseHeldError(f"execution {execution_id} is being driven by {holder}")
        return Lease(execution_id, owner, row[0], now + ttl, bool(row[1]))

    async def renew_lease(self, lease: Lease, ttl: float, now: float) -> Lease:
        eid = lease.execution_id
        expires_at = now + ttl
        row = await self._write(eid, Q.RENEW, (expires_at, eid, lease.token), fetch=True)
        if row is None:
            raise await self._stale_apart(lease)
        return Lease(eid, lease.owner, lease.token, expires_at, bool(row[0]))

    async def release_lease(self, lease: Lease) -> None:
        eid = lease.execution_id
        if not await self._write(eid, Q.RELEASE, (eid, lease.token)):
            async with self._connection() as conn:
                await self._lease_row(conn, eid)  # unknown: NotFoundError; stale: nothing

    async def claim_executions(
        self, owner: str, ttl: float, now: float, *, limit: int, recover: bool = True
    ) -> list[Lease]:
        expires_at = now + ttl
        params = {
            "owner": owner,
            "expires_at": expires_at,
            "now": now,
            "limit": limit,
            "recover": recover,
        }
        async with self._connection() as conn:
            cursor = await conn.execute(Q.CLAIM, params)
            rows = await cursor.fetchall()
        rows.sort(key=lambda r: (r[3], r[0]))  # RETURNING keeps no order: oldest first
        return [Lease(eid, owner, token, expires_at, bool(flag)) for eid, token, flag, _ in rows]

    async def list_leases(self, now: float, *, owner: str | None = None) -> list[Lease]:
        async with self._connection() as conn:
            return await agents.list_leases(conn, now, owner)

    async def request_cancel(self, execution_id: str, now: float) -> Execution:
        async with self._connection() as conn, conn.transaction():
            cursor = await conn.execute(Q.LEASE_OF + " FOR UPDATE", (execution_id,))
            row = await cursor.fetchone()
            if row is None:
                raise not_found(execution_id)
            status, holder, holder_expires_at, _, _ = row
            if EXECUTION_STATUS[status].finished:
                raise InvalidTransitionError(
                    f"execution {execution_id} is already {status}; nothing to cancel"
                )
            if holder is not None and (holder_expires_at or 0) > now:
                await conn.execute(
                    "UPDATE executions SET cancel_requested = true WHERE id = %s",
                    (execution_id,),
                )
            else:
                await self._cancel(conn, execution_id, now)
        return await self.get_execution(execution_id)

    async def _cancel(self, conn: Conn, execution_id: str, now: float) -> None:
        cursor = await conn.execute(Q.UNFINISHED_STEPS, (execution_id,))
        keys = [key for (key,) in await cursor.fetchall()]
        at = time.time()
        await conn.execute(Q.CANCEL_STEPS, (now, execution_id))
        events = [(execution_id, at, "step", key, "cancelled", "{}") for key in keys]
        events.append((execution_id, at, "execution", None, "cancelled", "{}"))
        await conn.execute(Q.CANCEL_EXECUTION, (now, execution_id))
        async with conn.cursor() as cursor:
            await cursor.executemany(Q.ADD_EVENT, events)

    # -- security records -----------------------------------------------------------------

    async def put_secret(self, name: str, value: str, now: float) -> None:
        async with self._connection() as conn:
            await security.put_secret(conn, name, value, now)

    async def get_secrets(self) -> dict[str, str]:
        return {s.name: s.value for s in await self.list_secrets()}

    async def list_secrets(self) -> list[SecretRecord]:
        async with self._connection() as conn:
            return await security.list_secrets(conn)

    async def delete_secret(self, name: str) -> bool:
        async with self._connection() as conn:
            return await security.delete_secret(conn, name)

    async def register_workflow(
        self,
        workflow_id: str,
        workflow_hash: str,
        definition: str,
        now: float,
        created_by: str | None = None,
    ) -> WorkflowVersion:
        async with self._connection() as conn:
            return await security.register_workflow(
                conn, workflow_id, workflow_hash, definition, now, created_by
            )

    async def get_workflow(self, workflow_id: str, version: int | None = None) -> WorkflowVersion:
        async with self._connection() as conn:
            return await security.get_workflow(conn, workflow_id, version)

    async def list_workflows(self) -> list[WorkflowVersion]:
        async with self._connection() as conn:
            return await security.list_workflows(conn)

    async def create_token(self, token: Token) -> None:
        async with self._connection() as conn:
            await security.create_token(conn, token)

    async def find_token(self, token_hash: str) -> Token:
        async with self._connection() as conn:
            return await security.find_token(conn, token_hash)

    async def list_tokens(self) -> list[Token]:
        async with self._connection() as conn:
            return await security.list_tokens(conn)

    async def revoke_token(self, token_id: str, now: float) -> bool:
        async with self._connection() as conn:
            return await security.revoke_token(conn, token_id, now)

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
        async with self._connection() as conn:
            return await security.add_audit(conn, at, actor, action, target, allowed, encoded)

    async def list_audit(self, *, after: int = 0, limit: int = 1000) -> list[AuditEntry]:
        async with self._connection() as conn:
            return await security.list_audit(conn, after, limit)

    # -- agents ---------------------------------------------------------------------------

    async def acquire_leadership(
        self, name: str, owner: str, ttl: float, now: float
    ) -> Leadership | None:
        async with self._connection() as conn:
            return await agents.acquire_leadership(conn, name, owner, ttl, now)

    async def renew_leadership(self, leadership: Leadership, ttl: float, now: float) -> Leadership:
        async with self._connection() as conn:
            return await agents.renew_leadership(conn, leadership, ttl, now)

    async def release_leadership(self, leadership: Leadership) -> None:
        async with self._connection() as conn:
            await agents.release_leadership(conn, leadership)

    async def get_leader(self, name: str) -> Leadership | None:
        async with self._connection() as conn:
            return await agents.get_leader(conn, name)

    async def heartbeat_member(self, owner: str, now: float, info: Mapping[str, Any]) -> None:
        encoded = self._json(dict(info), f"agent {owner}'s info")
        async with self._connection() as conn:
            await agents.heartbeat_member(conn, owner, now, encoded)

    async def list_members(self, since: float = 0.0) -> list[Member]:
        async with self._connection() as conn:
            return await agents.list_members(conn, since)

    async def remove_member(self, owner: str) -> None:
        async with self._connection() as conn:
            await agents.remove_member(conn, owner)

    async def delete_executions(
        self,
        *,
        before: float,
        now: float,
        statuses: Collection[ExecutionStatus] = FINISHED,
        limit: int = 1000,
    ) -> list[str]:
        eligible = [str(s) for s in statuses if s.finished]
        if not eligible:
            return []
        async with self._connection() as conn:
            return await retention.delete_executions(conn, eligible, before, now, limit)

    async def aclose(self) -> None:
        """Write the staged transitions and close the pool's connections.

        Raises:
            StoreError: the staged transitions could not be written.
        """
        if self._closed:
            return
        self._closed = True
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        try:
            if self._flushes:
                await asyncio.gather(*self._flushes, return_exceptions=True)
            staged = self._staged
            self._staged = {}
            if staged:
                await self._write_staged([t for ts in staged.values() for t in ts])
        finally:
            await self._pool.close()

    # -- helpers ------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Conn]:
        """A pooled connection; psycopg's and the pool's errors become StoreError."""
        if self._pool.closed:
            raise self._closed_error()
        try:
            async with self._pool.connection() as conn:
                yield conn
        except SireError:
            raise
        except (psycopg.Error, OSError) as exc:
            raise store_error(self.where, exc) from exc
        except Exception as exc:
            if type(exc).__name__ == "PoolTimeout":
                raise store_error(self.where, exc) from exc
            raise

    async def _write(
        self, execution_id: str, statement: str, params: tuple[Any, ...], *, fetch: bool = False
    ) -> Any:
        """Run one fenced write, with the execution's staged transitions before it.

        Returns its row count (`fetch`: its first row, None for none).
        Staged transitions of a stale lease write nothing and are dropped; the write's
        own refusal does not undo them (they are other writes that travelled with it).
        """
        while (carrier := self._carriers.get(execution_id)) is not None:
            await carrier  # an earlier write carries this execution's staged ones
        staged = self._staged.pop(execution_id, None)
        if not staged:
            async with self._connection() as conn:
                cursor = await conn.execute(statement, params)
                return await _outcome(cursor, fetch)
        carrier = asyncio.get_running_loop().create_future()
        self._carriers[execution_id] = carrier
        try:
            if statement is Q.TRANSITION:  # one call for them all: one round trip
                fenced = await self._write_staged([*staged, params])
                return int((params[1], params[2]) in fenced)
            async with self._connection() as conn, conn.pipeline(), conn.transaction():
                await conn.execute(*_batch(staged))
                cursor = await conn.execute(statement, params)
            return await _outcome(cursor, fetch)
        except BaseException:
            self._staged[execution_id] = staged + self._staged.get(execution_id, [])
            raise
        finally:
            del self._carriers[execution_id]
            carrier.set_result(None)

    def _flush_staged_soon(self) -> None:
        self._flush_timer = None
        if not self._staged or self._closed:
            return
        task = asyncio.ensure_future(self._flush_staged())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush_staged(self) -> None:
        """Write every staged transition on its own (a step is running for a while)."""
        # An execution whose earlier staged transitions are in flight waits for its next
        # write: writing its later ones now could land them first.
        staged = {eid: ts for eid, ts in self._staged.items() if eid not in self._carriers}
        if not staged:
            return
        for eid in staged:
            del self._staged[eid]
        loop = asyncio.get_running_loop()
        carriers = {eid: loop.create_future() for eid in staged}
        self._carriers.update(carriers)
        try:
            await self._write_staged([t for ts in staged.values() for t in ts])
        except Exception:  # kept for the next durable write, which reports the error
            for eid, transitions in staged.items():
                self._staged[eid] = transitions + self._staged.get(eid, [])
        finally:
            for eid, carrier in carriers.items():
                del self._carriers[eid]
                carrier.set_result(None)

    async def _write_staged(self, transitions: list[Transition]) -> set[tuple[str, int]]:
        """Write transitions in one statement; the (id, token) pairs whose fence held."""
        async with self._connection() as conn:
            cursor = await conn.execute(*_batch(transitions))
            return {(eid, token) for eid, token in await cursor.fetchall()}

    async def _lease_row(
        self, conn: Conn, execution_id: str
    ) -> tuple[str, str | None, float | None, int, bool]:
        cursor = await conn.execute(Q.LEASE_OF, (execution_id,))
        row = await cursor.fetchone()
        if row is None:
            raise not_found(execution_id)
        return row  # type: ignore[no-any-return]

    async def _stale(self, conn: Conn, execution_id: str, token: int) -> StaleLeaseError:
        """The error of a fenced write that matched no row (NotFoundError raised)."""
        current = (await self._lease_row(conn, execution_id))[3]
        return StaleLeaseError(
            f"execution {execution_id}: lease token {token} is stale "
            f"(current {current}); another driver took over"
        )

    async def _stale_apart(self, lease: Lease) -> StaleLeaseError:
        async with self._connection() as conn:
            return await self._stale(conn, lease.execution_id, lease.token)

    def _closed_error(self) -> StoreError:
        return StoreError(f"{self.where}: the store is closed")

    def _transition(self, lease: Lease, key: str, state: StepState, at: float) -> Transition:
        eid = lease.execution_id
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
        step = self._step_row(eid, key, state)
        return (at, eid, lease.token, at, key, step[2], data, *step)

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
            bool(state.mocked),
        )

    def _json(self, value: object, what: str) -> str:
        try:
            text = _encode(value)
        except (TypeError, ValueError) as exc:
            raise StoreError(f"{self.where}: {what} cannot be stored as JSON ({exc})") from exc
        if "\\u0000" in text:
            raise StoreError(
                f"{self.where}: {what} cannot be stored as JSON (PostgreSQL refuses \\u0000)"
            )
        return text


def _batch(transitions: list[Transition]) -> tuple[str, tuple[float, str]]:
    """Q.TRANSITIONS and its parameters for `transitions`, in order."""
    return Q.TRANSITIONS, (time.time(), f"[{','.join(map(_element, transitions))}]")


def _element(transition: Transition) -> str:
    """A transition as an element of sire_transitions' batch (see migration 0003), built
    from text already encoded: its output, checkpoint and event data are JSON."""
    at, eid, token, _, key, status, data, _, _, _, output, error, attempts = transition[:13]
    next_attempt, started_at, finished_at, checkpoint, mocked = transition[13:]
    return (
        f"[{_encode(eid)},{int(token)},{_float(at)},{_encode(key)},{_encode(status)},"
        f"{data},{'null' if output is None else output},{_encode(error)},{int(attempts)},"
        f"{_float(next_attempt)},{_float(started_at)},{_float(finished_at)},"
        f"{'null' if checkpoint is None else checkpoint},{'true' if mocked else 'false'}]"
    )


def _float(value: float | None) -> str:
    """A number (or None) as JSON; PostgreSQL's float8 reads the non-finite ones as text."""
    if value is None:
        return "null"
    value = float(value)
    return repr(value) if math.isfinite(value) else f'"{value!r}"'


async def _outcome(cursor: psycopg.AsyncCursor[Any], fetch: bool) -> Any:
    if not fetch:
        return cursor.rowcount
    return await cursor.fetchone()


def _execution(row: Sequence[Any]) -> Execution:
    """An execution from a GET_EXECUTION row (in the order of its columns)."""
    return Execution(
        id=row[0],
        workflow_id=row[1],
        workflow_hash=row[2],
        status=EXECUTION_STATUS[row[3]],
        inputs=row[4],
        outputs=row[5],
        error=row[6],
        workspace=row[7],
        created_at=row[8],
        updated_at=row[9],
    )


def not_found(execution_id: str) -> NotFoundError:
    return NotFoundError(f"no execution '{execution_id}'")
