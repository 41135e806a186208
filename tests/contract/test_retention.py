"""The Store contract for retention: `delete_executions` removes finished executions.

Runs on every store (see conftest.py); durable stores are also read back through a
fresh connection.
"""

from __future__ import annotations

import time

import pytest

from sire.errors import NotFoundError
from sire.model.execution import ExecutionStatus, StepState, StepStatus
from sire.storage.base import Store

from .conftest import StoreHarness
from .test_store import T0, TTL, create, drive

LATER = 4_000_000_000.0  # after every wall-clock updated_at of these tests


async def finish(store: Store, execution_id: str, status: ExecutionStatus) -> None:
    await create(store, execution_id)
    lease = await drive(store, execution_id)
    await store.record_transition(lease, "a", StepState(StepStatus.COMPLETED, {"n": 1}))
    await store.update_execution(lease, status, error="boom" if status == "failed" else None)
    await store.release_lease(lease)


async def test_finished_executions_go_with_their_steps_and_events_and_the_rest_stay(
    store: Store, harness: StoreHarness
) -> None:
    await finish(store, "done", ExecutionStatus.COMPLETED)
    await finish(store, "broke", ExecutionStatus.FAILED)
    await create(store, "stopped")
    await store.request_cancel("stopped", T0)  # undriven: cancelled at once
    await create(store, "waiting")
    await create(store, "busy")
    await drive(store, "busy")
    kept = await store.list_events("busy")

    deleted = await store.delete_executions(before=LATER, now=LATER)

    assert deleted == ["stopped", "done", "broke"]  # oldest update first
    other = await harness.reopen()
    for gone in deleted:
        with pytest.raises(NotFoundError):
            await other.get_execution(gone)
        with pytest.raises(NotFoundError):
            await other.list_events(gone)
    assert {e.id for e in await other.list_executions()} == {"waiting", "busy"}
    assert await other.list_events("busy") == kept
    # events appended later still follow the kept ones
    await create(store, "next")
    assert (await store.list_events("next"))[0].seq > kept[-1].seq
    assert await store.delete_executions(before=LATER, now=LATER) == []


async def test_only_finished_statuses_asked_for_and_older_than_before_go(store: Store) -> None:
    await finish(store, "done", ExecutionStatus.COMPLETED)
    await finish(store, "broke", ExecutionStatus.FAILED)
    running = {ExecutionStatus.RUNNING, ExecutionStatus.PENDING}
    assert await store.delete_executions(before=LATER, now=LATER, statuses=running) == []
    assert await store.delete_executions(before=T0, now=LATER) == []  # none that old
    only = [ExecutionStatus.FAILED]
    assert await store.delete_executions(before=LATER, now=LATER, statuses=only) == ["broke"]
    assert (await store.get_execution("done")).status is ExecutionStatus.COMPLETED


async def test_limit_bounds_one_call(store: Store) -> None:
    for name in ("e1", "e2", "e3"):
        await finish(store, name, ExecutionStatus.COMPLETED)
    assert await store.delete_executions(before=LATER, now=LATER, limit=2) == ["e1", "e2"]
    assert await store.delete_executions(before=LATER, now=LATER, limit=2) == ["e3"]


async def test_an_execution_whose_lease_lives_is_left_alone(store: Store) -> None:
    await create(store, "resuming")
    lease = await drive(store, "resuming", ExecutionStatus.FAILED, now=T0)
    now = time.time()
    assert lease.expires_at == T0 + TTL
    assert await store.delete_executions(before=LATER, now=T0 + 1) == []
    assert await store.delete_executions(before=LATER, now=max(now, T0 + TTL)) == ["resuming"]
