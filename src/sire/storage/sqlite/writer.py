"""The thread that owns the SQLite connection: group commit, refusals, checkpoints.

Above: store.py queues jobs and awaits their futures. Below: the connection and the
jobs of jobs.py. The thread takes every job queued, runs them in one transaction,
commits once, then completes their futures through `call_soon_threadsafe` (one
wake-up of the loop a group): group commit. Consecutive step transitions in a group
are written together, a step that several change written once. Should a job be
refused, the group runs again with a savepoint for each job, so that the refused one
is undone alone. Reads run on the same thread, after every write queued before them.
A second thread checkpoints the WAL into the database file, which SQLite would
otherwise do (and fsync) inside every thousandth commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sire.errors import SireError
from sire.storage.sqlite.jobs import Jobs, Transition
from sire.storage.sqlite.schema import connect, store_error

# (op, args, future, writes, staged transitions to write first): `op(jobs, *args)` runs
# on the thread, with `jobs` its Jobs; op None stops the thread.
Job = tuple[
    Callable[..., Any] | None,
    tuple[Any, ...],
    asyncio.Future[Any] | None,
    bool,
    list[Transition] | None,
]
_Result = tuple[asyncio.Future[Any] | None, Any, BaseException | None]

_RECORD = Jobs.record
_FLUSH = Jobs.flush
# A checkpoint is asked for once the WAL holds about SQLite's own 1,000 pages: about 5
# a commit, and half a page more a job, since the jobs of a group share pages (measured:
# 4.9 a commit in a chain; 80 for a group of 170 jobs over a few hundred executions).
_CHECKPOINT_PAGES = 1000
_CHECKPOINT_PASSES = 4  # background passes at most before the writer finishes the job
_FEW_FRAMES = 64  # frames written during a pass that are few enough for the writer


class Writer:
    """The thread that owns the connection: every job runs here, a group per transaction.

    Each write job checks its lease's token with its first statement (jobs.py), so a
    refused job has written nothing. A stale step transition is refused on its own;
    any other refusal rolls the group back and runs it again job by job, each in a
    savepoint (`_run_apart`), which keeps a refusal from undoing its neighbours.
    """

    def __init__(
        self, path: Path, synchronous: str, busy_timeout: float, pragmas: dict[str, int | str]
    ) -> None:
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self.pragmas = pragmas
        self.queue: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.commits = 0
        self.conn: sqlite3.Connection
        self.jobs: Jobs
        self._pages = 0  # WAL pages written (an estimate) since a checkpoint was asked for
        self._checkpoint_due = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._catch_up = False  # set by the checkpointer: the writer checkpoints the rest
        self._stopping = False

    def stop(self, future: asyncio.Future[None] | None = None) -> None:
        """Ask the thread to finish the jobs queued, close the connection and end."""
        self.queue.put((None, (), future, False, None))

    # -- the thread ---------------------------------------------------------------------

    def run(self, ready: asyncio.Future[None]) -> None:
        try:
            self.conn = connect(self.path, self.synchronous, self.busy_timeout, self.pragmas)
        except Exception as exc:
            _hand_back([(ready, None, self._error(exc))])
            return
        self.jobs = Jobs(self.conn)
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
                # Housekeeping only now, and little: the loop, woken, needs the GIL to
                # settle the futures, and gets it when this thread next blocks.
                if self._pages >= _CHECKPOINT_PAGES:
                    self._request_checkpoint()
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

    def _run_group(self, jobs: list[Job]) -> list[_Result]:
        conn = self.conn
        cursor = self.jobs.cursor
        writes = any(job[3] for job in jobs)
        begin = "BEGIN IMMEDIATE" if writes else "BEGIN"
        try:
            cursor.execute(begin)
        except sqlite3.Error as exc:  # locked: refuse the writes at once, then try the reads
            refused: list[_Result] = [(job[2], None, self._error(exc)) for job in jobs if job[3]]
            reads = [job for job in jobs if not job[3]]
            if not writes:
                return refused + [(job[2], None, self._error(exc)) for job in reads]
            return refused + (self._run_group(reads) if reads else [])
        try:
            try:
                results = self._run_together(jobs)
            except SireError as exc:
                conn.execute("ROLLBACK")
                if len(jobs) == 1 and not jobs[0][4]:  # the transaction was its savepoint
                    return [(jobs[0][2], None, exc)]
                cursor.execute(begin)
                results = [self._run_apart(job) for job in jobs]
            cursor.execute("COMMIT")
        except Exception as exc:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            if len(jobs) > 1:  # find which job failed: each alone, in its own transaction
                return [result for job in jobs for result in self._run_group([job])]
            return [(jobs[0][2], None, self._error(exc))]
        if writes:
            self.commits += 1
            self._pages += 5 + len(jobs) // 2
        return results

    def _run_together(self, jobs: list[Job]) -> list[_Result]:
        """The group's jobs without savepoints, consecutive transitions written as one.

        A stale transition is refused alone (it writes nothing). Any other refusal
        raises, and the caller runs the group again with `_run_apart`: refusals are
        rare, and a savepoint per job costs two statements.

        Raises:
            SireError: a job was refused (the transaction must be rolled back).
        """
        results: list[_Result] = []
        transitions: list[Transition] = []  # to write before the next other job
        records: list[tuple[asyncio.Future[Any] | None, Transition]] = []
        for op, args, future, _, staged in jobs:
            if staged:
                transitions += staged
            if op is _RECORD:
                transitions.append(args[0])
                records.append((future, args[0]))
            elif op is _FLUSH:
                results.append((future, None, None))
            else:
                assert op is not None
                if transitions:
                    self._write(transitions, records, results)
                    transitions, records = [], []
                results.append((future, op(self.jobs, *args), None))
        if transitions:
            self._write(transitions, records, results)
        return results

    def _write(
        self,
        transitions: list[Transition],
        records: list[tuple[asyncio.Future[Any] | None, Transition]],
        results: list[_Result],
    ) -> None:
        stale = self.jobs.write_transitions(transitions)
        if stale:
            results += [(future, None, stale.get((t[0], t[1]))) for future, t in records]
        else:
            results += [(future, None, None) for future, _ in records]

    def _run_apart(self, job: Job) -> _Result:
        """One job of a group: its staged transitions, then its own work in a savepoint.

        The staged transitions stay written when the job itself is refused: they are
        other writes that merely travelled with it (memory.py applies them first too).
        """
        op, args, future, _, staged = job
        assert op is not None
        conn = self.conn
        jobs = self.jobs
        try:
            jobs.fenced = jobs.flush_staged(staged) if staged else None
            conn.execute("SAVEPOINT job")
            try:
                value = op(jobs, *args)
            except SireError:
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                raise
            conn.execute("RELEASE job")
        except SireError as exc:
            return (future, None, exc)
        return (future, value, None)

    def _error(self, exc: BaseException) -> BaseException:
        if isinstance(exc, sqlite3.Error):
            error = store_error(self.path, exc, self.busy_timeout)
            error.__cause__ = exc
            return error
        return exc

    # -- checkpoints --------------------------------------------------------------------

    def _request_checkpoint(self) -> None:
        self._pages = 0
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
