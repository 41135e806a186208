"""SQLiteStore beyond the Store contract: files, locks, full disks, migrations, group commit.

The shared behaviour is pinned by tests/contract/test_store.py; these tests use real
files in tmp_path, and a second sqlite3 connection where another process would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sire.errors import StaleLeaseError, StoreError
from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus
from sire.storage.base import Lease
from sire.storage.sqlite import (
    MIGRATIONS,
    SCHEMA_VERSION,
    SQLiteStore,
    integrity_check,
    open_sqlite,
)
from sire.storage.sqlite.store import STAGED_DELAY

T0 = 1_700_000_000.0
TTL = 30.0
DONE = StepState(StepStatus.COMPLETED, output={"n": 1}, attempts=1, finished_at=T0 + 2)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sire.db"


@pytest.fixture
async def store(db: Path) -> Any:
    opened = await open_sqlite(db)
    yield opened
    await opened.aclose()


def execution(execution_id: str = "exec-1", **fields: Any) -> Execution:
    return Execution(
        id=execution_id,
        workflow_id="greet",
        workflow_hash="sha256:aaaa",
        step_states={"a": StepState(), "b": StepState()},
        created_at=T0,
        updated_at=T0,
        **fields,
    )


async def driven(store: SQLiteStore, execution_id: str = "exec-1", **fields: Any) -> Lease:
    await store.create_execution(execution(execution_id, **fields), "id: greet\n")
    lease = await store.acquire_lease(execution_id, "driver", TTL, T0)
    await store.update_execution(lease, ExecutionStatus.RUNNING)
    return lease


@contextlib.contextmanager
def write_lock_held(db: Path, *, exclusive: bool = False) -> Iterator[sqlite3.Connection]:
    """Another connection holding the write lock until the block ends (and rolled back)."""
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN EXCLUSIVE" if exclusive else "BEGIN IMMEDIATE")
    try:
        yield other
    finally:
        if other.in_transaction:
            other.execute("ROLLBACK")
        other.close()


async def queued_while_locked(db: Path, *calls: Any) -> list[Any]:
    """Run `calls` as tasks that all queue before the writer can start: at most two groups.

    The writer thread waits on the lock for its first group; everything queued meanwhile
    goes in the next.
    """
    other = sqlite3.connect(db, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        tasks = [asyncio.create_task(call) for call in calls]
        await asyncio.sleep(0)  # one turn of the loop: every task queues its job
    finally:
        other.execute("ROLLBACK")
        other.close()
    async with asyncio.timeout(10):
        return await asyncio.gather(*tasks, return_exceptions=True)


def read_bytes(path: Path) -> bytes:
    return path.read_bytes()  # a small file: no need to leave the loop


def write_bytes(path: Path, content: bytes) -> None:
    path.write_bytes(content)


def wal_size(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


# -- round trips and durability --------------------------------------------------------


async def test_an_execution_round_trips_through_the_file(db: Path) -> None:
    rich = execution(
        inputs={"name": "Zoë 🌍 — 名前", "nested": {"list": [1, 2.5, None, True, {"deep": []}]}},
        workspace="/tmp/wörk space",
    )
    store = await open_sqlite(db)
    await store.create_execution(rich, "id: greet  # ünïcode ✓\n")
    lease = await store.acquire_lease("exec-1", "driver", TTL, T0)
    fetched = StepState(
        StepStatus.COMPLETED,
        output={"body": "héllo\n\u2603", "items": [{"id": 1}, {"id": 2}], "ok": True, "n": None},
        attempts=2,
        started_at=T0 + 1.25,
        finished_at=T0 + 2.5,
    )
    waiting = StepState(StepStatus.RETRYING, error="✗ timeout", attempts=1, next_attempt=T0 + 9)
    await store.record_transition(lease, "each/0", StepState(StepStatus.COMPLETED, output="ü"))
    await store.record_transition(lease, "b", waiting)
    await store.record_transition(lease, "a", fetched)
    outputs = {"greeting": "héllo 🌍", "nested": {"list": [1, None, {"x": 0.1}]}}
    await store.update_execution(lease, ExecutionStatus.COMPLETED, outputs=outputs)
    await store.aclose()

    reopened = await open_sqlite(db)
    got = await reopened.get_execution("exec-1")
    await reopened.aclose()

    assert got.step_states == {
        "a": fetched,
        "b": waiting,
        "each/0": StepState(StepStatus.COMPLETED, output="ü"),
    }
    assert list(got.step_states) == ["a", "b", "each/0"]  # first seen first, as in a dict
    assert (got.status, got.outputs, got.error) == (ExecutionStatus.COMPLETED, outputs, None)
    assert (got.inputs, got.workspace) == (rich.inputs, rich.workspace)
    assert integrity_check(db) == "ok"


async def test_data_survives_close_and_reopen(db: Path) -> None:
    store = await open_sqlite(db)
    lease = await driven(store)
    await store.record_transition(lease, "a", DONE)
    events = await store.list_events("exec-1")
    await store.aclose()

    reopened = await open_sqlite(db)
    try:
        assert (await reopened.get_execution("exec-1")).step_states["a"] == DONE
        assert await reopened.list_events("exec-1") == events
        assert await reopened.get_definition("sha256:aaaa") == "id: greet\n"
        with pytest.raises(StaleLeaseError):  # the lease's token survives too
            await reopened.record_transition(
                Lease("exec-1", "driver", lease.token - 1, T0 + TTL), "b", DONE
            )
        await reopened.record_transition(lease, "b", DONE)
    finally:
        await reopened.aclose()


async def test_staged_transitions_become_durable_with_the_next_record(db: Path) -> None:
    store = await open_sqlite(db)
    lease = await driven(store)
    running = StepState(StepStatus.RUNNING, attempts=1, started_at=T0 + 1)

    store.stage_transition(lease, "a", running)
    other = await open_sqlite(db)
    staged_only = (await other.get_execution("exec-1")).step_states["a"]
    await store.record_transition(lease, "b", DONE)
    after_record = (await other.get_execution("exec-1")).step_states
    await other.aclose()
    await store.aclose()

    assert staged_only == StepState()
    assert after_record == {"a": running, "b": DONE}


async def test_a_staged_transition_that_nothing_carries_is_written_on_its_own(db: Path) -> None:
    store = await open_sqlite(db)
    other = await open_sqlite(db)
    lease = await driven(store)
    running = StepState(StepStatus.RUNNING, attempts=1, started_at=T0 + 1)
    store.stage_transition(lease, "long", running)  # a long call: no completion comes soon
    async with asyncio.timeout(5):
        while "long" not in (await other.get_execution("exec-1")).step_states:  # noqa: ASYNC110 - polls another connection
            await asyncio.sleep(STAGED_DELAY)
    seen = (await other.get_execution("exec-1")).step_states["long"]
    await other.aclose()
    await store.aclose()
    assert seen == running


async def test_a_new_file_and_its_directories_are_created_at_the_latest_schema(
    tmp_path: Path,
) -> None:
    db = tmp_path / "deep" / "er" / "sire.db"

    await (await open_sqlite(db)).aclose()

    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_schema")}
    assert {"definitions", "executions", "steps", "events"} <= tables
    assert integrity_check(db) == "ok"


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [number for number, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert len(MIGRATIONS) == SCHEMA_VERSION


async def test_aclose_is_idempotent_and_later_calls_raise_store_error(db: Path) -> None:
    store = await open_sqlite(db)
    lease = await driven(store)
    await store.aclose()
    await store.aclose()

    with pytest.raises(StoreError, match="the store is closed"):
        await store.get_execution("exec-1")
    with pytest.raises(StoreError, match="the store is closed"):
        store.stage_transition(lease, "a", DONE)


async def test_creating_an_execution_twice_raises_store_error_and_keeps_the_first(
    store: SQLiteStore,
) -> None:
    lease = await driven(store)
    await store.record_transition(lease, "a", DONE)
    before = await store.get_execution("exec-1"), await store.list_events("exec-1")

    with pytest.raises(StoreError, match="execution exec-1 already exists"):
        await store.create_execution(execution(inputs={"again": True}), "other\n")

    assert (await store.get_execution("exec-1"), await store.list_events("exec-1")) == before
    await store.record_transition(lease, "b", DONE)  # the lease still holds


async def test_cancelling_an_undriven_execution_fences_off_its_last_driver(
    store: SQLiteStore,
) -> None:
    lease = await driven(store)

    await store.request_cancel("exec-1", T0 + TTL + 1)  # the lease expired

    with pytest.raises(StaleLeaseError):
        await store.record_transition(lease, "a", DONE)
    assert (await store.get_execution("exec-1")).step_states["a"].status is StepStatus.CANCELLED


async def test_an_output_that_is_not_json_raises_store_error_and_writes_nothing(
    store: SQLiteStore,
) -> None:
    lease = await driven(store)
    events = await store.list_events("exec-1")

    with pytest.raises(StoreError, match="the output of step 'a' cannot be stored as JSON"):
        await store.record_transition(lease, "a", StepState(output={"when": object()}))

    assert (await store.get_execution("exec-1")).step_states["a"] == StepState()
    assert await store.list_events("exec-1") == events


async def test_synchronous_full_is_accepted_and_anything_else_refused(db: Path) -> None:
    await (await open_sqlite(db, synchronous="full")).aclose()

    with pytest.raises(ValueError, match="synchronous"):
        await open_sqlite(db, synchronous="off")


# -- what the environment gets wrong ---------------------------------------------------


async def test_a_file_that_is_not_sqlite_raises_store_error_and_is_left_alone(db: Path) -> None:
    content = b"this is a YAML file, not a database\n" * 100
    write_bytes(db, content)

    with pytest.raises(StoreError) as raised:
        await open_sqlite(db)

    assert str(raised.value) == f"{db} is not a Sire database (file is not a database)"
    assert read_bytes(db) == content
    assert sorted(p.name for p in db.parent.iterdir()) == [db.name]


async def test_a_newer_schema_raises_store_error_and_leaves_the_file_unchanged(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE from_the_future (x)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        conn.commit()
    content = read_bytes(db)

    with pytest.raises(StoreError) as raised:
        await open_sqlite(db)

    assert str(raised.value) == (
        f"{db}: database schema version {SCHEMA_VERSION + 1} is newer than this Sire "
        f"({SCHEMA_VERSION}); upgrade Sire"
    )
    assert read_bytes(db) == content


async def test_opening_a_database_locked_by_another_process_raises_store_error(
    db: Path,
) -> None:
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("CREATE TABLE theirs (x)")  # rollback-journal mode: a lock stops readers
    with write_lock_held(db, exclusive=True), pytest.raises(StoreError) as raised:
        await open_sqlite(db, busy_timeout=0.05)

    assert re.fullmatch(
        rf"{re.escape(str(db))} is locked by another connection .*", str(raised.value)
    )
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
        assert [r[0] for r in conn.execute("SELECT name FROM sqlite_schema")] == ["theirs"]


async def test_a_write_while_another_process_holds_the_lock_raises_store_error(
    db: Path,
) -> None:
    await (await open_sqlite(db)).aclose()
    store = await open_sqlite(db, busy_timeout=0.05)
    try:
        with write_lock_held(db, exclusive=True), pytest.raises(StoreError) as raised:
            await store.create_execution(execution(), "id: greet\n")
        listed = await store.list_executions()
    finally:
        await store.aclose()

    assert str(db) in str(raised.value)
    assert "is locked" in str(raised.value)
    assert listed == []
    assert integrity_check(db) == "ok"


async def test_reads_go_on_while_another_process_holds_the_write_lock(db: Path) -> None:
    store = await open_sqlite(db, busy_timeout=0.05)
    try:
        await store.create_execution(execution(), "id: greet\n")
        with write_lock_held(db, exclusive=True):
            got = await store.get_execution("exec-1")
    finally:
        await store.aclose()

    assert got.id == "exec-1"


async def test_a_full_disk_raises_store_error_and_keeps_what_was_stored(db: Path) -> None:
    store = await open_sqlite(db)
    lease = await driven(store)
    await store.record_transition(lease, "a", DONE)
    before = await store.get_execution("exec-1")
    await store.aclose()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]

    full = await open_sqlite(db, pragmas={"max_page_count": pages})
    try:
        with pytest.raises(StoreError) as raised:
            await full.record_transition(lease, "b", DONE._replace(output="x" * 1_000_000))
        after = await full.get_execution("exec-1")
    finally:
        await full.aclose()

    assert str(raised.value) == f"{db}: the database or disk is full; free some space and retry"
    assert after == before
    reopened = await open_sqlite(db)
    assert await reopened.get_execution("exec-1") == before
    await reopened.aclose()
    assert integrity_check(db) == "ok"


async def test_the_wal_stays_bounded_under_a_steady_stream_of_writes(db: Path) -> None:
    store = await open_sqlite(db)
    lease = await driven(store)
    sizes = []
    for batch in range(6):
        for i in range(500):
            await store.record_transition(lease, f"each/{batch}-{i}", DONE)
        sizes.append(wal_size(db))
    await store.aclose()

    # Unchecked, the WAL would grow by about 9 MB a batch (4 to 5 pages a transition).
    assert max(sizes) < 20_000_000, sizes
    assert wal_size(db) == 0  # the last connection to close checkpoints it all
    assert integrity_check(db) == "ok"


def test_integrity_check_of_a_missing_file_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open"):
        integrity_check(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()


# -- group commit ------------------------------------------------------------------------


async def test_concurrent_record_transitions_share_commits(store: SQLiteStore) -> None:
    lease = await driven(store)
    commits = store.commits

    async with asyncio.timeout(30):
        await asyncio.gather(
            *(store.record_transition(lease, f"each/{i}", DONE) for i in range(200))
        )

    got = await store.get_execution("exec-1")
    assert all(got.step_states[f"each/{i}"] == DONE for i in range(200))
    assert store.commits - commits < 200


async def test_a_stale_job_in_a_group_does_not_roll_back_its_neighbours(
    store: SQLiteStore, db: Path
) -> None:
    lease = await driven(store)
    stale = Lease("exec-1", "old", lease.token - 1, T0)
    commits = store.commits

    results = await queued_while_locked(
        db,
        store.record_transition(lease, "a", DONE),
        store.record_transition(lease, "b", DONE),
        store.record_transition(stale, "stale", DONE),
        store.record_transition(lease, "c", DONE),
        store.record_transition(lease, "d", DONE),
    )

    assert store.commits - commits <= 2  # so the stale job shared a group
    assert [type(r).__name__ for r in results] == ["NoneType"] * 2 + ["StaleLeaseError"] + [
        "NoneType"
    ] * 2
    states = (await store.get_execution("exec-1")).step_states
    assert states == {"a": DONE, "b": DONE, "c": DONE, "d": DONE}
    events = await store.list_events("exec-1")
    assert [e.key for e in events if e.kind == "step"] == ["a", "b", "c", "d"]


async def test_a_job_that_fills_the_disk_fails_alone_in_its_group(db: Path) -> None:
    store = await open_sqlite(db)
    lease = await driven(store)
    await store.aclose()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    full = await open_sqlite(db, pragmas={"max_page_count": pages + 2})
    huge = DONE._replace(output="x" * 1_000_000)

    try:
        results = await queued_while_locked(
            db,
            full.record_transition(lease, "a", DONE),
            full.record_transition(lease, "b", huge),
            full.record_transition(lease, "c", DONE),
        )
        states = (await full.get_execution("exec-1")).step_states
    finally:
        await full.aclose()

    assert results[0] is None
    assert isinstance(results[1], StoreError)
    assert "full" in str(results[1])
    assert results[2] is None
    assert states == {"a": DONE, "b": StepState(), "c": DONE}
    assert integrity_check(db) == "ok"


async def test_transitions_written_together_keep_every_event_and_the_last_state(
    store: SQLiteStore, db: Path
) -> None:
    lease = await driven(store)
    running = StepState(StepStatus.RUNNING, attempts=1, started_at=T0 + 1)
    before = await store.list_events("exec-1")
    store.stage_transition(lease, "a", running)
    store.stage_transition(lease, "each/1", running)

    results = await queued_while_locked(
        db,
        store.record_transition(lease, "a", DONE),
        store.record_transition(lease, "each/0", running),
        store.record_transition(lease, "each/1", DONE),
        store.record_transition(lease, "each/0", DONE),
    )

    assert results == [None] * 4
    got = await store.get_execution("exec-1")
    assert got.step_states == {"a": DONE, "b": StepState(), "each/1": DONE, "each/0": DONE}
    assert list(got.step_states) == ["a", "b", "each/1", "each/0"]  # first seen first
    events = await store.list_events("exec-1", after=before[-1].seq)
    assert [(e.key, e.status) for e in events] == [
        ("a", "running"),
        ("each/1", "running"),
        ("a", "completed"),
        ("each/0", "running"),
        ("each/1", "completed"),
        ("each/0", "completed"),
    ]
    await store.record_transition(lease, "b", DONE)
    seqs = [e.seq for e in await store.list_events("exec-1")]
    assert seqs == sorted(set(seqs))


async def test_transitions_of_several_executions_written_together_are_all_kept(
    store: SQLiteStore, db: Path
) -> None:
    first = await driven(store, "exec-1")
    second = await driven(store, "exec-2")
    store.stage_transition(first, "a", DONE)
    store.stage_transition(second, "a", DONE)

    results = await queued_while_locked(
        db,
        store.record_transition(second, "b", DONE),
        store.record_transition(first, "b", DONE),
        store.record_transition(second, "each/0", DONE),
        store.record_transition(first, "each/0", DONE),
    )

    assert results == [None] * 4
    for execution_id in ("exec-1", "exec-2"):
        got = await store.get_execution(execution_id)
        assert got.step_states == {"a": DONE, "b": DONE, "each/0": DONE}
        events = await store.list_events(execution_id)
        assert [e.key for e in events if e.kind == "step"] == ["a", "b", "each/0"]


async def test_a_stale_lease_in_a_group_of_several_executions_refuses_only_its_own(
    store: SQLiteStore, db: Path
) -> None:
    kept = await driven(store, "exec-1")
    lost = await driven(store, "exec-2")
    await store.acquire_lease("exec-2", "other", TTL, T0 + TTL + 1)
    store.stage_transition(lost, "a", DONE)  # dropped, as the stale lease's record below
    store.stage_transition(kept, "a", DONE)

    results = await queued_while_locked(
        db,
        store.record_transition(kept, "b", DONE),
        store.record_transition(lost, "b", DONE),
        store.record_transition(kept, "each/0", DONE),
    )

    assert [type(r).__name__ for r in results] == ["NoneType", "StaleLeaseError", "NoneType"]
    assert (await store.get_execution("exec-1")).step_states == {
        "a": DONE,
        "b": DONE,
        "each/0": DONE,
    }
    assert (await store.get_execution("exec-2")).step_states == execution().step_states
    assert [e.kind for e in await store.list_events("exec-2")] == ["execution"] * 2


async def test_a_job_refused_in_a_group_is_undone_alone(store: SQLiteStore, db: Path) -> None:
    lease = await driven(store)
    await store.create_execution(execution("exec-2"), "id: greet\n")
    await store.acquire_lease("exec-2", "other", TTL, T0)
    store.stage_transition(lease, "a", DONE)
    commits = store.commits

    results = await queued_while_locked(
        db,
        store.record_transition(lease, "b", DONE),
        store.acquire_lease("exec-2", "driver", TTL, T0),
        store.get_execution("unknown"),
        store.update_execution(lease, ExecutionStatus.COMPLETED),
    )

    assert store.commits - commits <= 2  # so the refused jobs shared a group
    assert [type(r).__name__ for r in results] == [
        "NoneType",
        "LeaseHeldError",
        "NotFoundError",
        "NoneType",
    ]
    got = await store.get_execution("exec-1")
    assert (got.status, got.step_states) == (ExecutionStatus.COMPLETED, {"a": DONE, "b": DONE})
    events = await store.list_events("exec-1")
    assert [(e.key, e.status) for e in events[-3:]] == [
        ("a", "completed"),
        ("b", "completed"),
        (None, "completed"),
    ]
    lease_2 = await store.acquire_lease("exec-2", "other", TTL, T0)  # still other's
    assert lease_2.token == 2
