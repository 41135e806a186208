"""SQLiteStore: the Store in one SQLite file in WAL mode, the embedded default.

Above: the engine, the agent and the CLI, through the Store protocol (base.py).
Below: the stdlib sqlite3 module, driven by one writer thread that owns the
connection, so the event loop never waits on the disk. A call queues a job and awaits
a future; the thread takes every job queued, runs them in one transaction (a savepoint
each, so a refused job is undone alone), commits once, then completes their futures
through `call_soon_threadsafe`: group commit. Reads run on the same thread, after
every write queued before them. A second thread checkpoints the WAL into the database
file, which SQLite would otherwise do (and fsync) inside every thousandth commit. The
schema is the numbered migrations in sql/sqlite/, its version `PRAGMA user_version`;
the queries are sql/sqlite/queries.sql.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import re
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from sire.errors import (
    InvalidTransitionError,
    LeaseHeldError,
    NotFoundError,
    SireError,
    StaleLeaseError,
    StoreError,
)
from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus
from sire.storage.base import Event, Lease

T = TypeVar("T")

# (execution_id, token, steps row, key, status, event data): one step transition, encoded.
_Transition = tuple[str, int, tuple[Any, ...], str, str, str]
# (op, args, future, writes, staged transitions to write first); op None stops the thread.
_Job = tuple[
    Callable[..., Any] | None,
    tuple[Any, ...],
    asyncio.Future[Any] | None,
    bool,
    list[_Transition] | None,
]
_Result = tuple[asyncio.Future[Any] | None, Any, BaseException | None]

# Beside this module, not through importlib.resources (9 ms of imports at start-up):
# Sire installs as files, never from a zip.
_SQL = Path(__file__).with_name("sql") / "sqlite"
_MIGRATION_NAME = re.compile(r"(\d{4})_\w+\.sql")
_PRAGMA_NAME = re.compile(r"[a-z_]+")
_PRAGMA_VALUE = re.compile(r"-?\w+")
_SYNCHRONOUS = ("normal", "full")
_MIN_SQLITE = (3, 24, 0)  # upserts
_CHECKPOINT_EVERY = 200  # write jobs between checkpoints: about SQLite's 1,000 WAL pages
_CHECKPOINT_PASSES = 4  # background passes at most before the writer finishes the job
_FEW_FRAMES = 64  # frames written during a pass that are few enough for the writer

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_decode = json.loads
_STEP_STATUS = {s.value: s for s in StepStatus}
_EXECUTION_STATUS = {s.value: s for s in ExecutionStatus}


class _Queries(NamedTuple):
    """queries.sql, one attribute per `-- name:` (a missing or extra name fails at import)."""

    put_definition: str
    get_definition: str
    put_execution: str
    get_execution: str
    get_steps: str
    list_executions: str
    list_events: str
    lease_of: str
    touch: str
    put_step: str
    add_event: str
    set_status: str
    set_workflow_hash: str
    renew_lease: str
    release_lease: str
    grant_lease: str
    due_executions: str
    flag_cancel: str
    unfinished_steps: str
    cancel_step: str
    cancel_execution: str

    @classmethod
    def load(cls) -> _Queries:
        text = _SQL.joinpath("queries.sql").read_text("utf-8")
        chunks = re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]
        return cls(
            **{name.strip(): body.strip() for name, _, body in (c.partition("\n") for c in chunks)}
        )


def _load_migrations() -> list[tuple[int, str]]:
    found = []
    for entry in _SQL.iterdir():
        match = _MIGRATION_NAME.fullmatch(entry.name)
        if match:
            found.append((int(match[1]), entry.read_text("utf-8")))
    return sorted(found)


Q = _Queries.load()
MIGRATIONS = _load_migrations()
SCHEMA_VERSION = MIGRATIONS[-1][0]


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
        if not _PRAGMA_NAME.fullmatch(name) or not _PRAGMA_VALUE.fullmatch(str(value)):
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
    writer = _Writer(target, synchronous.upper(), busy_timeout, dict(pragmas or {}))
    ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    threading.Thread(
        target=writer.run, args=(ready,), name=f"sire-sqlite {target.name}", daemon=True
    ).start()
    try:
        await ready
    except BaseException:
        writer.queue.put((None, (), None, False, None))  # stop the thread, should it have opened
        raise
    return SQLiteStore(writer)


def integrity_check(path: str | os.PathLike[str]) -> str:
    """`PRAGMA integrity_check` of the database at `path`: `ok`, or the problems, one a line.

    Raises:
        StoreError: the file cannot be opened, or is not a database.
    """
    target = Path(path)
    try:
        conn = sqlite3.connect(target.resolve().as_uri() + "?mode=rw", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise _store_error(target, exc, 0) from exc
    return "\n".join(str(row[0]) for row in rows)


class SQLiteStore:
    """The Store in an SQLite file; open one with `open_sqlite`.

    Several stores (in one process or several) may share a file: SQLite's locks
    serialise their writes, and the fencing tokens keep drivers apart. `commits`
    counts the transactions this store committed (a group of jobs commits once).
    """

    def __init__(self, writer: _Writer) -> None:
        self._writer = writer
        self._queue = writer.queue
        self._staged: list[_Transition] = []
        self._closed = False
        self._stopped: asyncio.Future[None] | None = None
        # A store dropped without aclose() still lets its thread close the connection.
        weakref.finalize(self, self._queue.put, (None, (), None, False, None))

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
        await self._submit(self._writer.create, row, steps, execution.workflow_hash, definition)

    async def get_execution(self, execution_id: str) -> Execution:
        return await self._submit(self._writer.get, execution_id, write=False)

    async def get_definition(self, workflow_hash: str) -> str:
        return await self._submit(self._writer.get_definition, workflow_hash, write=False)

    async def set_definition(self, lease: Lease, workflow_hash: str, definition: str) -> None:
        await self._submit(
            self._writer.set_definition, lease.execution_id, lease.token, workflow_hash, definition
        )

    async def list_executions(
        self,
        *,
        statuses: Collection[ExecutionStatus] | None = None,
        workflow_id: str | None = None,
        limit: int = 100,
    ) -> list[Execution]:
        wanted: list[str | None] = []
        if statuses is not None:
            chosen = {str(s) for s in statuses}
            wanted = [s for s in _EXECUTION_STATUS if s in chosen]
        wanted += [None] * (len(_EXECUTION_STATUS) - len(wanted))
        params = (None if statuses is None else 1, *wanted, workflow_id, limit)
        return await self._submit(self._writer.list_executions, params, write=False)

    async def list_events(self, execution_id: str, *, after: int = 0) -> list[Event]:
        return await self._submit(self._writer.list_events, execution_id, after, write=False)

    # -- transitions --------------------------------------------------------------------

    def stage_transition(self, lease: Lease, key: str, state: StepState) -> None:
        # Kept here, not queued: the thread would commit it alone, a commit per step.
        if self._closed:
            raise self._closed_error()
        self._staged.append(self._transition(lease, key, state))

    async def record_transition(self, lease: Lease, key: str, state: StepState) -> None:
        transition = self._transition(lease, key, state)
        await self._submit(self._writer.record, transition, staged=self._take_staged())

    async def update_execution(
        self,
        lease: Lease,
        status: ExecutionStatus,
        *,
        outputs: Mapping[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        eid = lease.execution_id
        encoded = None if outputs is None else self._json(outputs, f"execution {eid}: outputs")
        data = self._json({"error": error}, f"execution {eid}: error") if error else "{}"
        await self._submit(
            self._writer.update,
            (str(status), encoded, error, eid, lease.token),
            data,
            staged=self._take_staged(),
        )

    # -- leases -------------------------------------------------------------------------

    async def acquire_lease(self, execution_id: str, owner: str, ttl: float, now: float) -> Lease:
        return await self._submit(self._writer.acquire, execution_id, owner, now + ttl, now)

    async def renew_lease(self, lease: Lease, ttl: float, now: float) -> Lease:
        return await self._submit(self._writer.renew, lease, now + ttl, staged=self._take_staged())

    async def release_lease(self, lease: Lease) -> None:
        await self._submit(
            self._writer.release, lease.execution_id, lease.token, staged=self._take_staged()
        )

    async def claim_executions(
        self, owner: str, ttl: float, now: float, *, limit: int
    ) -> list[Lease]:
        return await self._submit(self._writer.claim, owner, now, now + ttl, limit)

    async def request_cancel(self, execution_id: str, now: float) -> Execution:
        return await self._submit(self._writer.cancel, execution_id, now)

    async def aclose(self) -> None:
        """Write the staged transitions, stop the writer thread and close the file.

        Raises:
            StoreError: the staged transitions could not be written.
        """
        if self._stopped is None:
            self._closed = True
            loop = asyncio.get_running_loop()
            staged = self._take_staged()
            flushed: asyncio.Future[None] | None = None
            if staged:
                flushed = loop.create_future()
                self._queue.put((self._writer.flush, (), flushed, True, staged))
            self._stopped = loop.create_future()
            self._queue.put((None, (), self._stopped, False, None))
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
        staged: list[_Transition] | None = None,
    ) -> asyncio.Future[T]:
        if self._closed:
            raise self._closed_error()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((op, args, future, write, staged))
        return future

    def _closed_error(self) -> StoreError:
        return StoreError(f"{self._writer.path}: the store is closed")

    def _take_staged(self) -> list[_Transition] | None:
        staged = self._staged
        if not staged:
            return None
        self._staged = []
        return staged

    def _transition(self, lease: Lease, key: str, state: StepState) -> _Transition:
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
        output = state.output
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
        )

    def _json(self, value: object, what: str) -> str:
        try:
            return _encode(value)
        except (TypeError, ValueError) as exc:
            raise StoreError(
                f"{self._writer.path}: {what} cannot be stored as JSON ({exc})"
            ) from exc


class _Writer:
    """The thread that owns the connection: every job runs here, a group per transaction.

    Each write job checks its lease's token with its first statement, which writes
    nothing when the token is stale, so a refused job has written nothing; the
    savepoint around it keeps that true of any later refusal.
    """

    def __init__(
        self, path: Path, synchronous: str, busy_timeout: float, pragmas: dict[str, int | str]
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.pragmas = pragmas
        self.queue: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.commits = 0
        self.conn: sqlite3.Connection
        self.fenced: tuple[str, int] | None = None  # checked by this job's staged writes
        self._written = 0  # write jobs committed since the last checkpoint was asked for
        self._checkpoint_due = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._catch_up = False  # set by the checkpointer: the writer checkpoints the rest
        self._stopping = False

    # -- the thread ---------------------------------------------------------------------

    def run(self, ready: asyncio.Future[None]) -> None:
        try:
            self.conn = self._connect()
        except Exception as exc:
            _hand_back([(ready, None, self._error(exc))])
            return
        _hand_back([(ready, None, None)])
        jobs = self.queue
        while True:
            batch = [jobs.get()]
            while not jobs.empty():
                batch.append(jobs.get_nowait())
            stop = batch.pop() if batch[-1][0] is None else None
            if batch:
                try:
                    results = self._run_group(batch)
                except BaseException as exc:  # a bug: fail the group rather than hang it
                    results = [(job[2], None, exc) for job in batch]
                _hand_back(results)
                if self._catch_up:
                    self._finish_checkpoint()
            if stop is not None:
                self._stopping = True
                if self._checkpointer is not None:
                    self._checkpoint_due.set()
                    self._checkpointer.join()
                try:
                    self.conn.close()  # the last connection to close checkpoints the rest
                except sqlite3.Error as exc:
                    _hand_back([(stop[2], None, self._error(exc))])
                else:
                    _hand_back([(stop[2], None, None)])
                return

    def _run_group(self, jobs: list[_Job]) -> list[_Result]:
        conn = self.conn
        writes = any(job[3] for job in jobs)
        try:
            conn.execute("BEGIN IMMEDIATE" if writes else "BEGIN")
        except sqlite3.Error as exc:  # locked: refuse the writes at once, then try the reads
            refused: list[_Result] = [(job[2], None, self._error(exc)) for job in jobs if job[3]]
            reads = [job for job in jobs if not job[3]]
            if not writes:
                return refused + [(job[2], None, self._error(exc)) for job in reads]
            return refused + (self._run_group(reads) if reads else [])
        results: list[_Result] = []
        try:
            if len(jobs) == 1 and jobs[0][4] is None:  # alone: the transaction is its savepoint
                op, args, future, _, _ = jobs[0]
                assert op is not None
                self.fenced = None
                try:
                    results.append((future, op(*args), None))
                except SireError as exc:
                    conn.execute("ROLLBACK")
                    return [(future, None, exc)]
            else:
                results = [self._run_job(job) for job in jobs]
            conn.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if len(jobs) > 1:  # find which job failed: each alone, in its own transaction
                return [result for job in jobs for result in self._run_group([job])]
            return [(jobs[0][2], None, self._error(exc))]
        if writes:
            self.commits += 1
            self._written += len(jobs)
            if self._written >= _CHECKPOINT_EVERY:
                self._request_checkpoint()
        return results

    def _run_job(self, job: _Job) -> _Result:
        """One job of a group: its staged transitions, then its own work in a savepoint.

        The staged transitions stay written when the job itself is refused: they are
        other writes that merely travelled with it (memory.py applies them first too).
        """
        op, args, future, _, staged = job
        assert op is not None
        conn = self.conn
        try:
            self.fenced = self._flush(staged) if staged else None
            conn.execute("SAVEPOINT job")
            try:
                value = op(*args)
            except SireError:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                raise
            conn.execute("RELEASE job")
        except SireError as exc:
            return (future, None, exc)
        return (future, value, None)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            self._check_version(conn)  # before anything writes to the file
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise StoreError(f"{self.path}: cannot use write-ahead logging here ({mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer thread's job
            for name, value in self.pragmas.items():
                conn.execute(f"PRAGMA {name} = {value}")
            if self._check_version(conn) < SCHEMA_VERSION:
                self._migrate(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def _request_checkpoint(self) -> None:
        self._written = 0
        if self._checkpointer is None:  # started late: a short-lived store never needs one
            self._checkpointer = threading.Thread(
                target=self._checkpoint_forever, name=f"{self.path.name} checkpoints", daemon=True
            )
            self._checkpointer.start()
        self._checkpoint_due.set()

    def _checkpoint_forever(self) -> None:
        """Copy the WAL into the database file (and fsync both) while the writer goes on.

        A PASSIVE checkpoint neither waits for nor blocks the writer, but the WAL only
        starts over once a checkpoint has copied every frame while the writer was idle.
        So passes go on until one saw few new frames, and the writer copies those few
        between two of its transactions (`_finish_checkpoint`), fsyncs included. One
        that fails (a reader holding old pages, a full disk) leaves the WAL to the next.
        """
        with contextlib.suppress(sqlite3.Error):
            conn = sqlite3.connect(self.path, isolation_level=None)
            with contextlib.closing(conn):
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                while self._checkpoint_due.wait() and not self._stopping:
                    self._checkpoint_due.clear()
                    self._checkpoint_passes(conn)
                    self._catch_up = True

    def _checkpoint_passes(self, conn: sqlite3.Connection) -> None:
        copied = 0
        for _ in range(_CHECKPOINT_PASSES):
            if self._stopping:
                return
            before = copied
            with contextlib.suppress(sqlite3.Error):
                copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[2]
            if 0 <= copied - before < _FEW_FRAMES:  # few written meanwhile (or it failed)
                return

    def _finish_checkpoint(self) -> None:
        """Copy the last frames, between transactions: the next one starts the WAL over."""
        self._catch_up = False
        with contextlib.suppress(sqlite3.Error):
            self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _check_version(self, conn: sqlite3.Connection) -> int:
        found: int = conn.execute("PRAGMA user_version").fetchone()[0]
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path}: database schema version {found} is newer than this Sire "
                f"({SCHEMA_VERSION}); upgrade Sire"
            )
        return found

    def _migrate(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            found = self._check_version(conn)  # another process may have migrated meanwhile
            for number, script in MIGRATIONS:
                if number > found:
                    for statement in _statements(script):
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    def _error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.Error):
            error = _store_error(self.path, exc, self.busy_timeout)
            error.__cause__ = exc
            return error
        return exc

    # -- jobs: each runs inside the group's transaction ---------------------------------

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
            raise _not_found(execution_id)
        execution = _execution(row)
        execution.step_states = {
            key: StepState(
                _STEP_STATUS[status],
                None if output is None else _decode(output),
                error,
                attempts,
                next_attempt,
                started_at,
                finished_at,
            )
            for key, status, output, error, attempts, next_attempt, started_at, finished_at in (
                self.conn.execute(Q.get_steps, (execution_id,))
            )
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

    def record(self, transition: _Transition) -> None:
        self._apply(transition, time.time(), self.fenced)

    def flush(self) -> None:
        """Nothing of its own: the job's staged transitions are all its work."""

    def update(self, params: tuple[Any, ...], data: str) -> None:
        now = time.time()
        status, outputs, error, execution_id, token = params
        self._fenced(Q.set_status, (status, outputs, error, now, execution_id, token))
        self.conn.execute(Q.add_event, (execution_id, now, "execution", None, status, data))

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

    def claim(self, owner: str, now: float, expires_at: float, limit: int) -> list[Lease]:
        due = [row[0] for row in self.conn.execute(Q.due_executions, (now, limit))]
        return [self._grant(execution_id, owner, expires_at) for execution_id in due]

    def cancel(self, execution_id: str, now: float) -> Execution:
        status, holder, holder_expires_at, _, _ = self._lease_row(execution_id)
        if _EXECUTION_STATUS[status].finished:
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

    # -- job helpers --------------------------------------------------------------------

    def _apply(self, transition: _Transition, now: float, fenced: tuple[str, int] | None) -> None:
        """Write one transition; `fenced`: an (id, token) this transaction already checked."""
        execution_id, token, step, key, status, data = transition
        if fenced != (execution_id, token):
            self._fenced(Q.touch, (now, execution_id, token))
        conn = self.conn
        seq = conn.execute(Q.add_event, (execution_id, now, "step", key, status, data)).lastrowid
        conn.execute(Q.put_step, (*step, seq))  # a new step's place: after all before it

    def _flush(self, staged: list[_Transition]) -> tuple[str, int] | None:
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

    def _grant(self, execution_id: str, owner: str, expires_at: float) -> Lease:
        self.conn.execute(Q.grant_lease, (owner, expires_at, execution_id))
        _, _, _, token, cancel_requested = self._lease_row(execution_id)
        return Lease(execution_id, owner, token, expires_at, bool(cancel_requested))

    def _lease_row(self, execution_id: str) -> tuple[str, str | None, float | None, int, int]:
        row = self.conn.execute(Q.lease_of, (execution_id,)).fetchone()
        if row is None:
            raise _not_found(execution_id)
        return row  # type: ignore[no-any-return]

    def _fenced(self, query: str, params: tuple[Any, ...]) -> None:
        """Run a fenced statement, whose last parameters are the execution id and token.

        It matches no row, and so writes nothing, unless the token is the current one.
        """
        if self.conn.execute(query, params).rowcount != 1:
            execution_id, token = params[-2:]
            current = self._lease_row(execution_id)[3]
            raise StaleLeaseError(
                f"execution {execution_id}: lease token {token} is stale "
                f"(current {current}); another driver took over"
            )


def _hand_back(results: list[_Result]) -> None:
    """Complete the futures on their loops, one wake-up per loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Result]] = {}
    for result in results:
        if result[0] is not None:
            by_loop.setdefault(result[0].get_loop(), []).append(result)
    for loop, some in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: no one is waiting
            loop.call_soon_threadsafe(_settle, some)


def _settle(results: list[_Result]) -> None:
    for future, value, error in results:
        if future is None or future.done():  # done: its awaiter was cancelled
            continue
        if error is None:
            future.set_result(value)
        else:
            future.set_exception(error)


def _execution(row: tuple[Any, ...]) -> Execution:
    """An execution from a `get_execution` row (in the order of its columns)."""
    outputs = row[5]
    return Execution(
        id=row[0],
        workflow_id=row[1],
        workflow_hash=row[2],
        status=_EXECUTION_STATUS[row[3]],
        inputs=_decode(row[4]),
        outputs=None if outputs is None else _decode(outputs),
        error=row[6],
        workspace=row[7],
        created_at=row[8],
        updated_at=row[9],
    )


def _not_found(execution_id: str) -> NotFoundError:
    return NotFoundError(f"no execution '{execution_id}'")


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration script (a trailing comment is not one)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def _store_error(path: Path, exc: sqlite3.Error, busy_timeout: float) -> StoreError:
    """One sentence for what SQLite reported: where, why, and what to do."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        waited = f" after waiting {busy_timeout:g} s" if busy_timeout else ""
        return StoreError(f"{path} is locked by another connection{waited}; retry when it is done")
    if code == sqlite3.SQLITE_NOTADB:
        return StoreError(f"{path} is not a Sire database (file is not a database)")
    if code == sqlite3.SQLITE_FULL:
        return StoreError(f"{path}: the database or disk is full; free some space and retry")
    if code == sqlite3.SQLITE_CANTOPEN:
        return StoreError(f"{path}: cannot open the database file; check its directory")
    if code == sqlite3.SQLITE_READONLY:
        return StoreError(f"{path} is read-only; check its permissions")
    if code == sqlite3.SQLITE_CORRUPT:
        return StoreError(f"{path} is corrupt ({exc}); restore it from a backup")
    if code == sqlite3.SQLITE_IOERR:
        return StoreError(f"{path}: disk I/O error ({exc}); check the disk")
    return StoreError(f"{path}: {exc}")
