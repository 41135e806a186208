"""The Store contract for step logs (`add_logs`), run over every implementation."""

from __future__ import annotations

import pytest

from sire.errors import StaleLeaseError
from sire.model.execution import ExecutionStatus, StepState, StepStatus
from sire.storage.base import LogEntry, Store

from .conftest import StoreHarness
from .test_store import T0, TTL, brief, create, drive

RUNNING = StepState(StepStatus.RUNNING, attempts=1, started_at=T0 + 1)
DONE = StepState(StepStatus.COMPLETED, output={"n": 1}, attempts=1, finished_at=T0 + 3)


def entry(message: str, level: str = "info", logger: str | None = "tool") -> LogEntry:
    return LogEntry(T0 + 2, level, message, logger, 1)


async def test_logs_are_appended_as_log_events_in_order(store: Store) -> None:
    await create(store)
    lease = await drive(store)
    await store.record_transition(lease, "a", RUNNING)
    await store.add_logs(lease, "a", [entry("one"), entry("two", "warning", None)])
    await store.add_logs(lease, "a", [entry("three", "debug", "stderr")])
    await store.record_transition(lease, "a", DONE)

    events = await store.list_events("exec-1")

    assert brief(events)[2:] == [
        ("step", "a", "running", {"attempts": 1}),
        ("log", "a", "info", {"message": "one", "logger": "tool", "attempt": 1}),
        ("log", "a", "warning", {"message": "two", "logger": None, "attempt": 1}),
        ("log", "a", "debug", {"message": "three", "logger": "stderr", "attempt": 1}),
        ("step", "a", "completed", {"attempts": 1}),
    ]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert events[3].at == T0 + 2  # when the tool logged it, not when it was written


async def test_logs_follow_the_staged_running_transition(store: Store) -> None:
    await create(store)
    lease = await drive(store)
    store.stage_transition(lease, "a", RUNNING)
    await store.add_logs(lease, "a", [entry("after running")])

    events = brief(await store.list_events("exec-1"))

    assert [(kind, status) for kind, _, status, _ in events[2:]] == [
        ("step", "running"),
        ("log", "info"),
    ]
    assert (await store.get_execution("exec-1")).step_states["a"].status is StepStatus.RUNNING


async def test_logs_of_a_stale_lease_are_refused_and_nothing_is_written(store: Store) -> None:
    await create(store)
    old = await drive(store)
    await store.release_lease(old)
    await store.acquire_lease("exec-1", "other", TTL, T0 + 1)

    with pytest.raises(StaleLeaseError):
        await store.add_logs(old, "a", [entry("late")])

    assert all(e.kind != "log" for e in await store.list_events("exec-1"))


async def test_log_events_are_durable_and_read_after_a_given_seq(harness: StoreHarness) -> None:
    store = await harness.open()
    await create(store)
    lease = await drive(store)
    await store.add_logs(lease, "b", [entry("kept ✓")])
    await store.update_execution(lease, ExecutionStatus.COMPLETED)
    seen = (await store.list_events("exec-1"))[1].seq
    await harness.close(store)

    reopened = await harness.reopen()
    events = await reopened.list_events("exec-1", after=seen)

    assert brief(events) == [
        ("log", "b", "info", {"message": "kept ✓", "logger": "tool", "attempt": 1}),
        ("execution", None, "completed", {}),
    ]
