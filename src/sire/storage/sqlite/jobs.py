"""What each store call does inside the writer's transaction: fenced statements, rows in and out.

Above: writer.py, which runs these jobs on its thread, a group per transaction.
Below: the connection it opened, and the named queries of schema.py. Every write job
checks its lease's token with its first statement, which writes nothing when the
token is stale, so a refused job has written nothing.
"""

from __future__ import annotations

import json
import sqlite3
import time
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
from sire.storage.sqlite.schema import Q

# (execution_id, token, steps row, key, status, event data): one step transition, encoded.
Transition = tuple[str, int, tuple[Any, ...], str, str, str]

# Transitions written one statement each up to this many; more are numbered and
# inserted in one call (which costs a statement more, but less per event).
_FEW = 3

_decode = json.loads
STEP_STATUS = {s.value: s for s in StepStatus}
EXECUTION_STATUS = {s.value: s for s in ExecutionStatus}


class Jobs:
    """The store's operations on one connection, each run inside a transaction it is given.

    `fenced` is the (execution id, token) that the staged transitions travelling with
    the current job already checked, or None: the writer sets it before each job it
    runs apart (in a savepoint). Together, transitions go through `write_transitions`.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.cursor = conn.cursor()  # reused on the hot path: a cursor costs 1 us to make
        self.fenced: tuple[str, int] | None = None

    def create(
        self, row: tuple[Any, ...], steps: list[tuple[Any, ...]], workflow_hash: str, source: str
    ) -> None:
        conn = self.conn
        if conn.execute(Q.lease_of, (row[0],)).fetchone() is not None:
            raise StoreError(f"execution {row[0]} already exists")
        conn.execute(Q.put_definition, (workflow_hash, source))
        conn.execute(Q.put_execution, row)
        # Negative places: before any step added later, placed by its event's seq.
        conn.executemany(Q.put_step, [(*step, i - len(steps)) for i, step in enumerate(steps)])
        conn.execute(Q.add_event, (row[0], time.time(), "execution", None, row[3], "{}"))

    def get(self, execution_id: str) -> Execution:
        row = self.conn.execute(Q.get_execution, (execution_id,)).fetchone()
        if row is None:
            raise not_found(execution_id)
        execution = _execution(row)
        execution.step_states = {
            key: StepState(
                STEP_STATUS[status],
                None if output is None else _decode(output),
                error,
                attempts,
                next_attempt,
                started_at,
                finished_at,
                None if checkpoint is None else _decode(checkpoint),
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
            ) in self.conn.execute(Q.get_steps, (execution_id,))
        }
        return execution

    def get_definition(self, workflow_hash: str) -> str:
        row = self.conn.execute(Q.get_definition, (workflow_hash,)).fetchone()
        if row is None:
            raise NotFoundError(f"no workflow definition with hash {workflow_hash}")
        source: str = row[0]
        return source

    def set_definition(
        self, execution_id: str, token: int, workflow_hash: str, source: str
    ) -> None:
        self._fenced(Q.set_workflow_hash, (workflow_hash, execution_id, token))
        self.conn.execute(Q.put_definition, (workflow_hash, source))

    def list_executions(self, params: tuple[Any, ...]) -> list[Execution]:
        return [_execution(row) for row in self.conn.execute(Q.list_executions, params)]

    def list_events(self, execution_id: str, after: int) -> list[Event]:
        self._lease_row(execution_id)
        return [
            Event(seq, execution_id, at, kind, key, status, _decode(data))
            for seq, at, kind, key, status, data in self.conn.execute(
                Q.list_events, (execution_id, after)
            )
        ]

    def record(self, transition: Transition) -> None:
        """One transition, run apart (the writer writes a group's through write_transitions)."""
        self._apply(transition, time.time(), self.fenced)

    def flush(self) -> None:
        """Nothing of its own: the job's staged transitions are all its work."""

    def update(self, params: tuple[Any, ...], data: str, release: bool = False) -> None:
        now = time.time()
        status, outputs, error, execution_id, token = params
        self._fenced(Q.set_status, (status, outputs, error, now, execution_id, token))
        self.conn.execute(Q.add_event, (execution_id, now, "execution", None, status, data))
        if release:  # fenced just above: the lease is still this token's
            self.conn.execute(Q.release_lease, (execution_id, token))

    def acquire(self, execution_id: str, owner: str, expires_at: float, now: float) -> Lease:
        _, holder, holder_expires_at, _, _ = self._lease_row(execution_id)
        if holder is not None and holder != owner and (holder_expires_at or 0) > now:
            raise LeaseHeldError(f"execution {execution_id} is being driven by {holder}")
        return self._grant(execution_id, owner, expires_at)

    def renew(self, lease: Lease, expires_at: float) -> Lease:
        eid, token = lease.execution_id, lease.token
        self._fenced(Q.renew_lease, (expires_at, eid, token))
        cancel_requested = self._lease_row(eid)[4]
        return Lease(eid, lease.owner, token, expires_at, bool(cancel_requested))

    def release(self, execution_id: str, token: int) -> None:
        if self.conn.execute(Q.release_lease, (execution_id, token)).rowcount != 1:
            self._lease_row(execution_id)  # unknown: NotFoundError; stale: nothing to do

    def claim(
        self, owner: str, now: float, expires_at: float, limit: int, recover: bool
    ) -> list[Lease]:
        due = [row[0] for row in self.conn.execute(Q.due_executions, (now, limit, recover))]
        return [self._grant(execution_id, owner, expires_at) for execution_id in due]

    def cancel(self, execution_id: str, now: float) -> Execution:
        status, holder, holder_expires_at, _, _ = self._lease_row(execution_id)
        if EXECUTION_STATUS[status].finished:
            raise InvalidTransitionError(
                f"execution {execution_id} is already {status}; nothing to cancel"
            )
        conn = self.conn
        if holder is not None and (holder_expires_at or 0) > now:
            conn.execute(Q.flag_cancel, (execution_id,))  # its driver cancels it
            return self.get(execution_id)
        keys = [row[0] for row in conn.execute(Q.unfinished_steps, (execution_id,))]
        at = time.time()
        conn.executemany(Q.cancel_step, [(now, execution_id, key) for key in keys])
        conn.executemany(
            Q.add_event, [(execution_id, at, "step", key, "cancelled", "{}") for key in keys]
        )
        conn.execute(Q.cancel_execution, (now, execution_id))
        conn.execute(Q.add_event, (execution_id, at, "execution", None, "cancelled", "{}"))
        return self.get(execution_id)

    def write_transitions(
        self, transitions: list[Transition]
    ) -> dict[tuple[str, int], StaleLeaseError]:
        """Write transitions in order, with one fenced touch per lease among them.

        A step that several transitions change is written once, in its last state
        (at the place its first event gives it); every transition keeps its event.
        Returns the errors of the fenced-off leases, whose transitions wrote nothing.

        Raises:
            NotFoundError: a transition names an unknown execution (nothing of the
                others is undone: the caller rolls the transaction back).
        """
        now = time.time()
        cursor = self.cursor
        fences = {(t[0], t[1]): None for t in transitions}  # in order, once each
        stale: dict[tuple[str, int], StaleLeaseError] = {}
        if len(fences) == 1:
            [(execution_id, token)] = fences
            if cursor.execute(Q.touch, (now, execution_id, token)).rowcount != 1:
                return {(execution_id, token): self._stale(execution_id, token)}
        else:
            cursor.executemany(Q.touch, [(now, *fence) for fence in fences])
            if cursor.rowcount != len(fences):  # some were taken over: which?
                for execution_id, token in fences:
                    if self._lease_row(execution_id)[3] != token:
                        stale[execution_id, token] = self._stale(execution_id, token)
                transitions = [t for t in transitions if (t[0], t[1]) not in stale]
        places: dict[tuple[str, str], int] = {}  # (execution id, key): its first event's seq
        rows: dict[tuple[str, str], tuple[Any, ...]] = {}  # (execution id, key): last row
        if len(transitions) > _FEW:
            # Numbered here, not by SQLite, so that one call inserts them all: under the
            # write lock, the next seq is max(seq) + 1 whoever assigns it.
            seq: int = cursor.execute(Q.last_seq).fetchone()[0]
            events = []
            for execution_id, _, step, key, status, data in transitions:
                seq += 1
                events.append((seq, execution_id, now, "step", key, status, data))
                places.setdefault((execution_id, key), seq)
                rows[execution_id, key] = step
            cursor.executemany(Q.add_event_at, events)
        else:
            for execution_id, _, step, key, status, data in transitions:
                event = (execution_id, now, "step", key, status, data)
                seq = cursor.execute(Q.add_event, event).lastrowid  # type: ignore[assignment]
                places.setdefault((execution_id, key), seq)
                rows[execution_id, key] = step
        if len(rows) == 1:
            [(place, step)] = rows.items()
            cursor.execute(Q.put_step, (*step, places[place]))
        else:
            cursor.executemany(Q.put_step, [(*step, places[p]) for p, step in rows.items()])
        return stale

    def flush_staged(self, staged: list[Transition]) -> tuple[str, int] | None:
        """Write staged transitions, dropping a fenced-off driver's (as memory.py does).

        Returns the (id, token) of the last one written: the job that carried them need
        not check that fence again (a driver stages, then records, under one lease).
        """
        now = time.time()
        fenced = None
        for transition in staged:
            try:
                self._apply(transition, now, fenced)
            except StaleLeaseError:
                continue
            fenced = (transition[0], transition[1])
        return fenced

    # -- helpers ------------------------------------------------------------------------

    def _apply(self, transition: Transition, now: float, fenced: tuple[str, int] | None) -> None:
        """Write one transition; `fenced`: an (id, token) this transaction already checked."""
        execution_id, token, step, key, status, data = transition
        if fenced != (execution_id, token):
            self._fenced(Q.touch, (now, execution_id, token))
        conn = self.conn
        seq = conn.execute(Q.add_event, (execution_id, now, "step", key, status, data)).lastrowid
        conn.execute(Q.put_step, (*step, seq))  # a new step's place: after all before it

    def _grant(self, execution_id: str, owner: str, expires_at: float) -> Lease:
        self.conn.execute(Q.grant_lease, (owner, expires_at, execution_id))
        _, _, _, token, cancel_requested = self._lease_row(execution_id)
        return Lease(execution_id, owner, token, expires_at, bool(cancel_requested))

    def _lease_row(self, execution_id: str) -> tuple[str, str | None, float | None, int, int]:
        row = self.conn.execute(Q.lease_of, (execution_id,)).fetchone()
        if row is None:
            raise not_found(execution_id)
        return row  # type: ignore[no-any-return]

    def _fenced(self, query: str, params: tuple[Any, ...]) -> None:
        """Run a fenced statement, whose last parameters are the execution id and token.

        It matches no row, and so writes nothing, unless the token is the current one.
        """
        if self.conn.execute(query, params).rowcount != 1:
            raise self._stale(*params[-2:])

    def _stale(self, execution_id: str, token: int) -> StaleLeaseError:
        """The error of a fenced statement that matched no row (NotFoundError raised)."""
        current = self._lease_row(execution_id)[3]
        return StaleLeaseError(
            f"execution {execution_id}: lease token {token} is stale "
            f"(current {current}); another driver took over"
        )


def _execution(row: tuple[Any, ...]) -> Execution:
    """An execution from a `get_execution` row (in the order of its columns)."""
    outputs = row[5]
    return Execution(
        id=row[0],
        workflow_id=row[1],
        workflow_hash=row[2],
        status=EXECUTION_STATUS[row[3]],
        inputs=_decode(row[4]),
        outputs=None if outputs is None else _decode(outputs),
        error=row[6],
        workspace=row[7],
        created_at=row[8],
        updated_at=row[9],
    )


def not_found(execution_id: str) -> NotFoundError:
    return NotFoundError(f"no execution '{execution_id}'")
