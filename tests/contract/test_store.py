"""The Store contract (sire.storage.base), run over every implementation in conftest.STORES.

MemoryStore is the reference: where base.py is silent, these tests pin what it does.
Times are passed explicitly as `now`; nothing here sleeps.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sire.errors import InvalidTransitionError, LeaseHeldError, NotFoundError, StaleLeaseError
from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus
from sire.storage.base import Event, Lease, Store

from .conftest import StoreHarness

T0 = 1_700_000_000.0
TTL = 30.0
DEFINITION = "id: greet\nsteps:\n  - id: hello\n    uses: sire:echo\n"


def make_execution(
    execution_id: str = "exec-1",
    *,
    workflow_id: str = "greet",
    workflow_hash: str = "sha256:aaaa",
    created_at: float = T0,
    step_states: dict[str, StepState] | None = None,
    inputs: dict[str, Any] | None = None,
) -> Execution:
    return Execution(
        id=execution_id,
        workflow_id=workflow_id,
        workflow_hash=workflow_hash,
        inputs={} if inputs is None else inputs,
        step_states={"a": StepState(), "b": StepState()} if step_states is None else step_states,
        created_at=created_at,
        updated_at=created_at,
    )


async def create(store: Store, execution_id: str = "exec-1", **fields: Any) -> Execution:
    execution = make_execution(execution_id, **fields)
    await store.create_execution(execution, DEFINITION)
    return execution


async def drive(
    store: Store,
    execution_id: str = "exec-1",
    status: ExecutionStatus = ExecutionStatus.RUNNING,
    *,
    owner: str = "driver",
    now: float = T0,
    error: str | None = None,
) -> Lease:
    """Acquire the execution's lease at `now` and set its status, as a driver starting."""
    lease = await store.acquire_lease(execution_id, owner, TTL, now)
    await store.update_execution(lease, status, error=error)
    return lease


def brief(events: list[Event]) -> list[tuple[str, str | None, str, dict[str, Any]]]:
    return [(e.kind, e.key, e.status, dict(e.data)) for e in events]


RUNNING_1 = StepState(StepStatus.RUNNING, attempts=1, started_at=T0 + 1)
COMPLETED_1 = StepState(
    StepStatus.COMPLETED, output={"n": 1}, attempts=1, started_at=T0 + 1, finished_at=T0 + 2
)


# -- create, get, definitions -------------------------------------------------------


def rich_execution() -> Execution:
    return Execution(
        id="01HZX3Q5V6W7Y8Z9ABCDEFGHJK",
        workflow_id="ünïcode-flow",
        workflow_hash="sha256:" + "ab" * 32,
        status=ExecutionStatus.PENDING,
        inputs={
            "name": "Zoë 🌍 — 名前",
            "count": 3,
            "ratio": 0.1,
            "flag": True,
            "nothing": None,
            "nested": {"list": [1, 2.5, None, False, "ü", {"deep": ["x"]}], "empty": {}},
            "empty_list": [],
        },
        workspace="/tmp/wörk space/ünï",
        step_states={
            "fetch": StepState(
                StepStatus.COMPLETED,
                output={"body": "héllo\n\u2603", "items": [{"id": 1}, {"id": 2}], "ok": True},
                attempts=2,
                started_at=T0 + 1.25,
                finished_at=T0 + 2.5,
            ),
            "parse": StepState(
                StepStatus.RETRYING,
                error="tool failed: ✗ timeout",
                attempts=1,
                next_attempt=T0 + 30.5,
                started_at=T0 + 3,
            ),
            "each/0": StepState(),
            "each/1": StepState(StepStatus.SKIPPED, output="plain text", finished_at=T0 + 4),
            "count": StepState(StepStatus.COMPLETED, output=42, attempts=1),
            "list": StepState(StepStatus.FAILED, output=[1, "two", None], error="bad", attempts=3),
        },
        created_at=T0,
        updated_at=T0 + 0.5,
    )


async def test_get_execution_returns_what_was_created(store: Store) -> None:
    execution = rich_execution()
    await store.create_execution(execution, DEFINITION)

    got = await store.get_execution(execution.id)

    assert got == rich_execution()
    assert type(got) is Execution
    assert type(got.status) is ExecutionStatus


async def test_step_states_come_back_as_step_states_with_enum_statuses(store: Store) -> None:
    execution = rich_execution()
    await store.create_execution(execution, DEFINITION)

    got = await store.get_execution(execution.id)

    assert set(got.step_states) == set(execution.step_states)
    for key, state in got.step_states.items():
        assert type(state) is StepState, key
        assert type(state.status) is StepStatus, key
        assert state._asdict() == execution.step_states[key]._asdict(), key


async def test_get_execution_returns_a_copy(store: Store) -> None:
    execution = rich_execution()
    await store.create_execution(execution, DEFINITION)

    got = await store.get_execution(execution.id)
    got.status = ExecutionStatus.FAILED
    got.inputs["name"] = "changed"
    got.inputs["nested"]["list"].append("more")
    got.step_states["fetch"].output["items"].append({"id": 3})
    got.step_states["parse"] = StepState(StepStatus.COMPLETED)
    got.step_states["new"] = StepState()

    assert await store.get_execution(execution.id) == rich_execution()


async def test_create_execution_keeps_no_reference_to_the_callers_execution(store: Store) -> None:
    execution = rich_execution()
    await store.create_execution(execution, DEFINITION)

    execution.inputs["nested"]["list"].clear()
    execution.step_states["fetch"].output["ok"] = False
    execution.step_states["each/0"] = StepState(StepStatus.COMPLETED)

    assert await store.get_execution(execution.id) == rich_execution()


async def test_get_execution_of_an_unknown_id_raises_not_found(store: Store) -> None:
    await create(store)

    with pytest.raises(NotFoundError):
        await store.get_execution("no-such-execution")


async def test_get_definition_returns_the_source_stored_under_the_hash(store: Store) -> None:
    source = "id: greet  # ünïcode ✓\nsteps: []\n"
    await store.create_execution(make_execution(workflow_hash="sha256:1111"), source)

    assert await store.get_definition("sha256:1111") == source


async def test_get_definition_of_an_unknown_hash_raises_not_found(store: Store) -> None:
    await create(store)

    with pytest.raises(NotFoundError):
        await store.get_definition("sha256:unknown")


async def test_a_second_execution_with_the_same_hash_reuses_the_stored_definition(
    store: Store,
) -> None:
    await store.create_execution(make_execution("exec-1", workflow_hash="sha256:1"), "first\n")
    await store.create_execution(make_execution("exec-2", workflow_hash="sha256:1"), "second\n")

    assert await store.get_definition("sha256:1") == "first\n"
    assert (await store.get_execution("exec-2")).workflow_hash == "sha256:1"


# -- list_executions -------------------------------------------------------------------


async def test_list_executions_returns_newest_first(store: Store) -> None:
    await create(store, "exec-b", created_at=T0 + 1)
    await create(store, "exec-a", created_at=T0 + 3)
    await create(store, "exec-c", created_at=T0 + 2)

    listed = await store.list_executions()

    assert [e.id for e in listed] == ["exec-a", "exec-c", "exec-b"]


async def test_list_executions_filters_by_statuses(store: Store) -> None:
    await create(store, "pending", created_at=T0 + 1)
    await create(store, "completed", created_at=T0 + 2)
    await create(store, "failed", created_at=T0 + 3)
    await create(store, "running", created_at=T0 + 4)
    await drive(store, "completed", ExecutionStatus.COMPLETED)
    await drive(store, "failed", ExecutionStatus.FAILED, error="boom")
    await drive(store, "running", ExecutionStatus.RUNNING)

    finished = await store.list_executions(
        statuses={ExecutionStatus.COMPLETED, ExecutionStatus.FAILED}
    )
    pending = await store.list_executions(statuses=[ExecutionStatus.PENDING])

    assert [(e.id, e.status) for e in finished] == [
        ("failed", ExecutionStatus.FAILED),
        ("completed", ExecutionStatus.COMPLETED),
    ]
    assert [e.id for e in pending] == ["pending"]
    assert await store.list_executions(statuses=[ExecutionStatus.CANCELLED]) == []


async def test_list_executions_filters_by_workflow_id(store: Store) -> None:
    await create(store, "g1", workflow_id="greet", created_at=T0 + 1)
    await create(store, "d1", workflow_id="deploy", workflow_hash="sha256:d", created_at=T0 + 2)
    await create(store, "g2", workflow_id="greet", created_at=T0 + 3)

    listed = await store.list_executions(workflow_id="greet")
    both = await store.list_executions(
        workflow_id="deploy", statuses=[ExecutionStatus.PENDING, ExecutionStatus.RUNNING]
    )

    assert [e.id for e in listed] == ["g2", "g1"]
    assert [e.id for e in both] == ["d1"]
    assert await store.list_executions(workflow_id="unknown") == []


async def test_list_executions_stops_at_limit(store: Store) -> None:
    for i in range(5):
        await create(store, f"exec-{i}", created_at=T0 + i)

    listed = await store.list_executions(limit=2)

    assert [e.id for e in listed] == ["exec-4", "exec-3"]


def with_fields(execution: Execution, **changes: Any) -> Execution:
    """A shallow copy of `execution` with some fields changed."""
    changed = copy.copy(execution)
    for name, value in changes.items():
        setattr(changed, name, value)
    return changed


async def test_list_executions_returns_copies_without_step_states(store: Store) -> None:
    execution = rich_execution()
    await store.create_execution(execution, DEFINITION)

    [summary] = await store.list_executions()
    summary.inputs["nested"]["list"].clear()

    assert summary.step_states == {}
    assert with_fields(summary, inputs=execution.inputs) == with_fields(execution, step_states={})
    assert await store.get_execution(execution.id) == rich_execution()


# -- record_transition and stage_transition ------------------------------------------


async def test_record_transition_replaces_one_steps_whole_state(store: Store) -> None:
    failed = StepState(StepStatus.FAILED, output={"partial": 1}, error="boom", attempts=1)
    await create(store, step_states={"a": failed, "b": COMPLETED_1})
    lease = await drive(store)

    await store.record_transition(lease, "a", RUNNING_1)

    got = await store.get_execution("exec-1")
    assert got.step_states == {"a": RUNNING_1, "b": COMPLETED_1}
    assert got.step_states["a"].output is None
    assert got.step_states["a"].error is None


async def test_record_transition_adds_the_state_of_a_new_item_key(store: Store) -> None:
    await create(store, step_states={"each": StepState(StepStatus.RUNNING)})
    lease = await drive(store)

    await store.record_transition(lease, "each/0", COMPLETED_1)
    await store.record_transition(lease, "each/1", RUNNING_1)

    got = await store.get_execution("exec-1")
    assert got.step_states == {
        "each": StepState(StepStatus.RUNNING),
        "each/0": COMPLETED_1,
        "each/1": RUNNING_1,
    }


async def test_record_transition_is_durable_when_it_returns(
    store: Store, harness: StoreHarness
) -> None:
    await create(store)
    lease = await drive(store)

    await store.record_transition(lease, "a", COMPLETED_1)

    other = await harness.reopen()
    assert (await other.get_execution("exec-1")).step_states["a"] == COMPLETED_1


async def test_a_staged_running_then_a_recorded_completed_ends_completed(store: Store) -> None:
    await create(store)
    lease = await drive(store)
    before = await store.list_events("exec-1")

    store.stage_transition(lease, "a", RUNNING_1)
    await store.record_transition(lease, "a", COMPLETED_1)

    assert (await store.get_execution("exec-1")).step_states["a"] == COMPLETED_1
    events = await store.list_events("exec-1", after=before[-1].seq)
    assert [(e.key, e.status) for e in events] == [("a", "running"), ("a", "completed")]


async def test_staged_transitions_are_written_in_fifo_order_by_the_next_record(
    store: Store,
) -> None:
    await create(store, step_states={"a": StepState(), "b": StepState(), "c": StepState()})
    lease = await drive(store)
    before = await store.list_events("exec-1")
    retrying = StepState(StepStatus.RETRYING, error="flaky", attempts=1, next_attempt=T0 + 5)

    store.stage_transition(lease, "a", RUNNING_1)
    store.stage_transition(lease, "b", RUNNING_1)
    store.stage_transition(lease, "a", retrying)
    await store.record_transition(lease, "c", COMPLETED_1)

    got = await store.get_execution("exec-1")
    assert got.step_states == {"a": retrying, "b": RUNNING_1, "c": COMPLETED_1}
    events = await store.list_events("exec-1", after=before[-1].seq)
    assert [(e.key, e.status) for e in events] == [
        ("a", "running"),
        ("b", "running"),
        ("a", "retrying"),
        ("c", "completed"),
    ]


FLUSHING_WRITES: dict[str, Callable[[Store, Lease], Awaitable[object]]] = {
    "update_execution": lambda store, lease: store.update_execution(
        lease, ExecutionStatus.RETRYING
    ),
    "renew_lease": lambda store, lease: store.renew_lease(lease, TTL, T0 + 1),
    "release_lease": lambda store, lease: store.release_lease(lease),
}


@pytest.mark.parametrize("write", list(FLUSHING_WRITES))
async def test_a_staged_transition_is_written_by_the_next_durable_write(
    store: Store, harness: StoreHarness, write: str
) -> None:
    await create(store)
    lease = await drive(store)

    store.stage_transition(lease, "a", RUNNING_1)
    await FLUSHING_WRITES[write](store, lease)

    other = await harness.reopen()
    assert (await other.get_execution("exec-1")).step_states["a"] == RUNNING_1
    assert ("step", "a", "running", {"attempts": 1}) in brief(await other.list_events("exec-1"))


async def test_aclose_writes_staged_transitions(store: Store, harness: StoreHarness) -> None:
    await create(store)
    lease = await drive(store)

    store.stage_transition(lease, "a", RUNNING_1)
    store.stage_transition(lease, "b", COMPLETED_1)
    await harness.close(store)

    reopened = await harness.reopen()
    got = await reopened.get_execution("exec-1")
    assert got.step_states == {"a": RUNNING_1, "b": COMPLETED_1}
    events = await reopened.list_events("exec-1")
    assert [(e.key, e.status) for e in events[-2:]] == [("a", "running"), ("b", "completed")]


async def test_a_stale_leases_staged_transition_is_dropped_without_failing_the_next_write(
    store: Store,
) -> None:
    await create(store)
    stale = await drive(store, owner="old")
    lease = await store.acquire_lease("exec-1", "new", TTL, T0 + TTL + 1)
    before = await store.list_events("exec-1")

    store.stage_transition(stale, "a", RUNNING_1)
    await store.record_transition(lease, "b", COMPLETED_1)

    got = await store.get_execution("exec-1")
    assert got.step_states == {"a": StepState(), "b": COMPLETED_1}
    events = await store.list_events("exec-1", after=before[-1].seq)
    assert [(e.key, e.status) for e in events] == [("b", "completed")]


REFUSED_WRITES: dict[str, Callable[[Store, Lease], Awaitable[object]]] = {
    "record_transition": lambda store, stale: store.record_transition(stale, "a", COMPLETED_1),
    "update_execution": lambda store, stale: store.update_execution(
        stale, ExecutionStatus.FAILED, error="late"
    ),
    "renew_lease": lambda store, stale: store.renew_lease(stale, TTL, T0 + TTL + 2),
}


@pytest.mark.parametrize("write", list(REFUSED_WRITES))
async def test_a_refused_write_does_not_lose_the_staged_transitions_of_other_leases(
    store: Store, write: str
) -> None:
    # One store serves every execution an agent drives: one lost lease must not cost
    # the others their staged transitions.
    await create(store, "driven")
    await create(store, "lost")
    lease = await drive(store, "driven")
    stale = await drive(store, "lost", owner="driver")
    await store.acquire_lease("lost", "other", TTL, T0 + TTL + 1)

    store.stage_transition(lease, "a", RUNNING_1)
    with pytest.raises(StaleLeaseError):
        await REFUSED_WRITES[write](store, stale)
    await store.record_transition(lease, "b", COMPLETED_1)

    got = await store.get_execution("driven")
    assert got.step_states == {"a": RUNNING_1, "b": COMPLETED_1}
    events = await store.list_events("driven")
    assert [(e.key, e.status) for e in events[-2:]] == [("a", "running"), ("b", "completed")]


# -- update_execution -------------------------------------------------------------------


async def test_update_execution_sets_the_status(store: Store) -> None:
    await create(store)
    lease = await store.acquire_lease("exec-1", "driver", TTL, T0)

    await store.update_execution(lease, ExecutionStatus.RUNNING)

    got = await store.get_execution("exec-1")
    assert (got.status, got.outputs, got.error) == (ExecutionStatus.RUNNING, None, None)
    assert type(got.status) is ExecutionStatus


async def test_update_execution_sets_outputs_and_error_when_it_finishes(store: Store) -> None:
    await create(store, "ok")
    await create(store, "ko")
    outputs = {"greeting": "héllo 🌍", "nested": {"list": [1, None, {"x": True}]}}

    await store.update_execution(
        await drive(store, "ok"), ExecutionStatus.COMPLETED, outputs=outputs
    )
    await store.update_execution(
        await drive(store, "ko"), ExecutionStatus.FAILED, error="step 'a' failed: boom"
    )

    ok, ko = await store.get_execution("ok"), await store.get_execution("ko")
    assert (ok.status, ok.outputs, ok.error) == (ExecutionStatus.COMPLETED, outputs, None)
    assert (ko.status, ko.outputs, ko.error) == (
        ExecutionStatus.FAILED,
        None,
        "step 'a' failed: boom",
    )


async def test_update_execution_keeps_the_outputs_when_none_are_given(store: Store) -> None:
    await create(store)
    lease = await drive(store)
    await store.update_execution(lease, ExecutionStatus.FAILED, outputs={"partial": 1}, error="x")

    await store.update_execution(lease, ExecutionStatus.RUNNING)

    got = await store.get_execution("exec-1")
    assert (got.status, got.outputs, got.error) == (ExecutionStatus.RUNNING, {"partial": 1}, None)


async def test_update_execution_keeps_no_reference_to_the_outputs(store: Store) -> None:
    await create(store)
    lease = await drive(store)
    outputs: dict[str, Any] = {"items": [1, 2]}

    await store.update_execution(lease, ExecutionStatus.COMPLETED, outputs=outputs)
    outputs["items"].append(3)
    outputs["more"] = True

    assert (await store.get_execution("exec-1")).outputs == {"items": [1, 2]}


# -- events -------------------------------------------------------------------------------


async def test_creating_an_execution_appends_one_execution_event(store: Store) -> None:
    await create(store)

    [event] = await store.list_events("exec-1")

    assert type(event) is Event
    assert (event.execution_id, event.kind, event.key, event.status) == (
        "exec-1",
        "execution",
        None,
        "pending",
    )
    assert dict(event.data) == {}
    assert isinstance(event.seq, int)
    assert isinstance(event.at, float)


async def test_each_step_transition_appends_one_event_with_attempts_error_and_next_attempt(
    store: Store,
) -> None:
    await create(store)
    lease = await drive(store)
    before = await store.list_events("exec-1")

    await store.record_transition(lease, "a", RUNNING_1)
    await store.record_transition(
        lease,
        "a",
        StepState(StepStatus.RETRYING, error="flaky", attempts=1, next_attempt=T0 + 5.5),
    )
    await store.record_transition(lease, "a", COMPLETED_1)
    await store.record_transition(
        lease, "b", StepState(StepStatus.FAILED, error="bad ✗", attempts=3, finished_at=T0 + 9)
    )

    events = await store.list_events("exec-1", after=before[-1].seq)
    assert brief(events) == [
        ("step", "a", "running", {"attempts": 1}),
        ("step", "a", "retrying", {"attempts": 1, "error": "flaky", "next_attempt": T0 + 5.5}),
        ("step", "a", "completed", {"attempts": 1}),
        ("step", "b", "failed", {"attempts": 3, "error": "bad ✗"}),
    ]
    assert all(e.execution_id == "exec-1" for e in events)


async def test_each_status_change_appends_one_execution_event_with_its_error(
    store: Store,
) -> None:
    await create(store)
    lease = await store.acquire_lease("exec-1", "driver", TTL, T0)

    await store.update_execution(lease, ExecutionStatus.RUNNING)
    await store.update_execution(lease, ExecutionStatus.FAILED, error="boom")
    await store.update_execution(lease, ExecutionStatus.RUNNING)
    await store.update_execution(lease, ExecutionStatus.COMPLETED, outputs={"x": 1})

    assert brief(await store.list_events("exec-1")) == [
        ("execution", None, "pending", {}),
        ("execution", None, "running", {}),
        ("execution", None, "failed", {"error": "boom"}),
        ("execution", None, "running", {}),
        ("execution", None, "completed", {}),
    ]


async def test_event_seq_strictly_increases_and_after_filters_on_it(store: Store) -> None:
    await create(store)
    lease = await drive(store)
    await store.record_transition(lease, "a", RUNNING_1)
    await store.record_transition(lease, "a", COMPLETED_1)
    await store.update_execution(lease, ExecutionStatus.COMPLETED, outputs={})

    events = await store.list_events("exec-1")
    seqs = [e.seq for e in events]

    assert len(events) == 5
    assert all(a < b for a, b in itertools.pairwise(seqs))
    assert await store.list_events("exec-1", after=seqs[1]) == events[2:]
    assert await store.list_events("exec-1", after=seqs[-1]) == []
    assert await store.list_events("exec-1", after=0) == events


async def test_list_events_keeps_executions_apart(store: Store) -> None:
    await create(store, "one")
    await create(store, "two")
    one, two = await drive(store, "one"), await drive(store, "two")
    await store.record_transition(one, "a", RUNNING_1)
    await store.record_transition(two, "b", RUNNING_1)
    await store.record_transition(one, "a", COMPLETED_1)

    events_one = await store.list_events("one")
    events_two = await store.list_events("two")

    assert {e.execution_id for e in events_one} == {"one"}
    assert {e.execution_id for e in events_two} == {"two"}
    assert [(e.key, e.status) for e in events_one] == [
        (None, "pending"),
        (None, "running"),
        ("a", "running"),
        ("a", "completed"),
    ]
    assert [(e.key, e.status) for e in events_two] == [
        (None, "pending"),
        (None, "running"),
        ("b", "running"),
    ]
    after_first_of_two = await store.list_events("two", after=events_two[0].seq)
    assert after_first_of_two == events_two[1:]


async def test_lease_operations_append_no_events(store: Store) -> None:
    await create(store, "exec-1")
    await create(store, "exec-2")
    before = await store.list_events("exec-1"), await store.list_events("exec-2")

    lease = await store.acquire_lease("exec-1", "driver", TTL, T0)
    lease = await store.renew_lease(lease, TTL, T0 + 1)
    await store.release_lease(lease)
    [claimed] = await store.claim_executions("agent", TTL, T0 + 2, limit=1)
    await store.claim_executions("agent", TTL, T0 + 2, limit=5)

    assert claimed.execution_id == "exec-1"
    assert (await store.list_events("exec-1"), await store.list_events("exec-2")) == before


async def test_list_events_of_an_unknown_execution_raises_not_found(store: Store) -> None:
    await create(store)

    with pytest.raises(NotFoundError):
        await store.list_events("no-such-execution")


# -- leases --------------------------------------------------------------------------------


async def test_acquire_lease_on_a_fresh_execution_grants_token_1(store: Store) -> None:
    await create(store)

    lease = await store.acquire_lease("exec-1", "driver", TTL, T0)

    assert lease == Lease("exec-1", "driver", 1, T0 + TTL, cancel_requested=False)
    assert type(lease) is Lease


async def test_acquire_lease_while_another_owner_holds_it_raises_lease_held(store: Store) -> None:
    await create(store)
    lease = await store.acquire_lease("exec-1", "first", TTL, T0)

    with pytest.raises(LeaseHeldError):
        await store.acquire_lease("exec-1", "second", TTL, T0 + TTL - 1)

    await store.record_transition(lease, "a", RUNNING_1)  # the holder is not disturbed
    assert (await store.get_execution("exec-1")).step_states["a"] == RUNNING_1


async def test_acquire_lease_of_an_unknown_execution_raises_not_found(store: Store) -> None:
    await create(store)

    with pytest.raises(NotFoundError):
        await store.acquire_lease("no-such-execution", "driver", TTL, T0)


async def test_acquire_lease_after_expiry_grants_a_larger_token(store: Store) -> None:
    await create(store)
    first = await store.acquire_lease("exec-1", "first", TTL, T0)

    second = await store.acquire_lease("exec-1", "second", TTL, T0 + TTL + 1)

    assert second == Lease("exec-1", "second", second.token, T0 + 2 * TTL + 1)
    assert second.token > first.token


STALE_WRITES: dict[str, Callable[[Store, Lease], Awaitable[object]]] = {
    "record_transition": lambda store, stale: store.record_transition(stale, "a", COMPLETED_1),
    "update_execution": lambda store, stale: store.update_execution(
        stale, ExecutionStatus.FAILED, outputs={"late": True}, error="late"
    ),
    "renew_lease": lambda store, stale: store.renew_lease(stale, 10 * TTL, T0 + TTL + 2),
    "set_definition": lambda store, stale: store.set_definition(stale, "sha256:v2", "v2\n"),
}


@pytest.mark.parametrize("write", list(STALE_WRITES))
async def test_a_write_under_a_taken_over_lease_raises_stale_and_changes_nothing(
    store: Store, write: str
) -> None:
    await create(store, step_states={"a": RUNNING_1, "b": StepState()})
    stale = await drive(store, owner="old")
    lease = await store.acquire_lease("exec-1", "new", TTL, T0 + TTL + 1)
    execution_before, events_before = (
        await store.get_execution("exec-1"),
        await store.list_events("exec-1"),
    )

    with pytest.raises(StaleLeaseError):
        await STALE_WRITES[write](store, stale)

    assert await store.get_execution("exec-1") == execution_before
    assert await store.list_events("exec-1") == events_before
    with pytest.raises(NotFoundError):
        await store.get_definition("sha256:v2")
    with pytest.raises(LeaseHeldError):  # the stale renewal took nothing from the new owner
        await store.acquire_lease("exec-1", "third", TTL, T0 + TTL + 3)
    assert await store.renew_lease(lease, TTL, T0 + TTL + 4) == Lease(
        "exec-1", "new", lease.token, T0 + 2 * TTL + 4
    )


async def test_renew_lease_extends_its_expiry(store: Store) -> None:
    await create(store)
    lease = await store.acquire_lease("exec-1", "driver", TTL, T0)

    renewed = await store.renew_lease(lease, TTL, T0 + 20)

    assert renewed == Lease("exec-1", "driver", lease.token, T0 + 20 + TTL)
    with pytest.raises(LeaseHeldError):  # past the first expiry, before the renewed one
        await store.acquire_lease("exec-1", "other", TTL, T0 + TTL + 10)
    other = await store.acquire_lease("exec-1", "other", TTL, T0 + 20 + TTL + 1)
    assert other.token > lease.token


async def test_release_lease_lets_another_owner_acquire_at_once(store: Store) -> None:
    await create(store)
    lease = await store.acquire_lease("exec-1", "driver", TTL, T0)

    await store.release_lease(lease)
    other = await store.acquire_lease("exec-1", "other", TTL, T0 + 1)

    assert other == Lease("exec-1", "other", other.token, T0 + 1 + TTL)
    assert other.token > lease.token


async def test_releasing_a_stale_lease_leaves_the_new_owners_lease_held(store: Store) -> None:
    await create(store)
    stale = await store.acquire_lease("exec-1", "old", TTL, T0)
    lease = await store.acquire_lease("exec-1", "new", TTL, T0 + TTL + 1)

    await store.release_lease(stale)

    with pytest.raises(LeaseHeldError):
        await store.acquire_lease("exec-1", "third", TTL, T0 + TTL + 2)
    await store.record_transition(lease, "a", RUNNING_1)
    assert (await store.get_execution("exec-1")).step_states["a"] == RUNNING_1


# -- claim_executions -------------------------------------------------------------------------


async def test_claim_executions_takes_pending_ones_oldest_first_up_to_limit(store: Store) -> None:
    await create(store, "exec-b", created_at=T0 + 2)
    await create(store, "exec-a", created_at=T0 + 1)
    await create(store, "exec-d", created_at=T0 + 4)
    await create(store, "exec-c", created_at=T0 + 3)

    claimed = await store.claim_executions("agent", TTL, T0 + 10, limit=3)

    assert claimed == [
        Lease("exec-a", "agent", 1, T0 + 10 + TTL),
        Lease("exec-b", "agent", 1, T0 + 10 + TTL),
        Lease("exec-c", "agent", 1, T0 + 10 + TTL),
    ]
    with pytest.raises(LeaseHeldError):
        await store.acquire_lease("exec-a", "other", TTL, T0 + 11)
    assert (await store.get_execution("exec-a")).status is ExecutionStatus.PENDING
    [last] = await store.claim_executions("agent-2", TTL, T0 + 11, limit=3)
    assert last == Lease("exec-d", "agent-2", 1, T0 + 11 + TTL)


async def test_claim_executions_skips_executions_with_a_live_lease(store: Store) -> None:
    await create(store, "held-pending", created_at=T0 + 1)
    await create(store, "held-running", created_at=T0 + 2)
    await create(store, "free", created_at=T0 + 3)
    await store.acquire_lease("held-pending", "driver", TTL, T0)
    await drive(store, "held-running")

    claimed = await store.claim_executions("agent", TTL, T0 + TTL - 1, limit=10)

    assert [c.execution_id for c in claimed] == ["free"]


async def test_claim_executions_takes_over_running_ones_whose_lease_expired(store: Store) -> None:
    await create(store)
    lease = await drive(store)

    assert await store.claim_executions("agent", TTL, T0 + TTL - 1, limit=10) == []
    claimed = await store.claim_executions("agent", TTL, T0 + TTL + 5, limit=10)

    assert claimed == [Lease("exec-1", "agent", claimed[0].token, T0 + 2 * TTL + 5)]
    assert claimed[0].token > lease.token
    assert (await store.get_execution("exec-1")).status is ExecutionStatus.RUNNING


async def test_claim_executions_takes_running_ones_whose_lease_was_released(store: Store) -> None:
    await create(store)
    lease = await drive(store)
    await store.release_lease(lease)

    claimed = await store.claim_executions("agent", TTL, T0 + 1, limit=10)

    assert claimed == [Lease("exec-1", "agent", claimed[0].token, T0 + 1 + TTL)]
    assert claimed[0].token > lease.token


async def test_claim_executions_waits_for_the_earliest_retrying_steps_next_attempt(
    store: Store,
) -> None:
    done_long_ago = StepState(StepStatus.COMPLETED, attempts=2, next_attempt=T0 + 1)
    await create(store, step_states={"a": done_long_ago, "b": StepState(), "c": StepState()})
    lease = await drive(store)
    retry = StepState(StepStatus.RETRYING, error="flaky", attempts=1)
    await store.record_transition(lease, "b", retry._replace(next_attempt=T0 + 100))
    await store.record_transition(lease, "c", retry._replace(next_attempt=T0 + 50))
    await store.update_execution(lease, ExecutionStatus.RETRYING)
    await store.release_lease(lease)

    assert await store.claim_executions("agent", TTL, T0 + 49, limit=10) == []
    claimed = await store.claim_executions("agent", TTL, T0 + 50, limit=10)

    assert claimed == [Lease("exec-1", "agent", claimed[0].token, T0 + 50 + TTL)]
    assert claimed[0].token > lease.token


async def test_claim_executions_never_takes_finished_executions(store: Store) -> None:
    for i, name in enumerate(["completed", "failed", "cancelled", "pending"]):
        await create(store, name, created_at=T0 + i)
    await store.release_lease(await drive(store, "completed", ExecutionStatus.COMPLETED))
    await store.release_lease(await drive(store, "failed", ExecutionStatus.FAILED, error="x"))
    await store.request_cancel("cancelled", T0)

    claimed = await store.claim_executions("agent", TTL, T0 + 10_000, limit=10)

    assert [c.execution_id for c in claimed] == ["pending"]


async def test_concurrent_claims_never_take_the_same_execution(store: Store) -> None:
    ids = {f"exec-{i:02}" for i in range(10)}
    for i, execution_id in enumerate(sorted(ids)):
        await create(store, execution_id, created_at=T0 + i)

    first, second = await asyncio.gather(
        store.claim_executions("agent-1", TTL, T0 + 20, limit=6),
        store.claim_executions("agent-2", TTL, T0 + 20, limit=6),
    )

    claimed_first = {c.execution_id for c in first}
    claimed_second = {c.execution_id for c in second}
    assert len(first) <= 6
    assert len(second) <= 6
    assert claimed_first.isdisjoint(claimed_second)
    assert claimed_first | claimed_second == ids
    assert {c.owner for c in first} <= {"agent-1"}
    assert {c.owner for c in second} <= {"agent-2"}


async def test_concurrent_claims_through_two_stores_never_take_the_same_execution(
    store: Store, harness: StoreHarness
) -> None:
    ids = {f"exec-{i:02}" for i in range(10)}
    for i, execution_id in enumerate(sorted(ids)):
        await create(store, execution_id, created_at=T0 + i)
    other = await harness.reopen()

    first, second = await asyncio.gather(
        store.claim_executions("agent-1", TTL, T0 + 20, limit=6),
        other.claim_executions("agent-2", TTL, T0 + 20, limit=6),
    )

    claimed_first = {c.execution_id for c in first}
    claimed_second = {c.execution_id for c in second}
    assert claimed_first.isdisjoint(claimed_second)
    assert claimed_first | claimed_second == ids


# -- request_cancel ---------------------------------------------------------------------------


MIXED_STEPS = {
    "done": COMPLETED_1,
    "skipped": StepState(StepStatus.SKIPPED, finished_at=T0 + 2),
    "failed": StepState(StepStatus.FAILED, error="bad", attempts=2, finished_at=T0 + 3),
    "running": RUNNING_1,
    "retrying": StepState(StepStatus.RETRYING, error="flaky", attempts=1, next_attempt=T0 + 9),
    "waiting": StepState(),
}
UNFINISHED = ("running", "retrying", "waiting")


async def never_leased(store: Store) -> None:
    pass


async def lease_released(store: Store) -> None:
    await store.release_lease(await drive(store))


async def lease_expired(store: Store) -> None:
    await drive(store, now=T0 - 2 * TTL)


UNDRIVEN = {
    "never leased": never_leased,
    "lease released": lease_released,
    "lease expired": lease_expired,
}


@pytest.mark.parametrize("how", list(UNDRIVEN))
async def test_request_cancel_of_an_undriven_execution_cancels_it_at_once(
    store: Store, how: str
) -> None:
    await create(store, step_states=dict(MIXED_STEPS))
    await UNDRIVEN[how](store)
    before = await store.list_events("exec-1")

    returned = await store.request_cancel("exec-1", T0 + 5)

    got = await store.get_execution("exec-1")
    assert returned == got
    assert got.status is ExecutionStatus.CANCELLED
    assert got.error == "cancelled"
    expected = {
        key: state._replace(status=StepStatus.CANCELLED, finished_at=T0 + 5)
        if key in UNFINISHED
        else state
        for key, state in MIXED_STEPS.items()
    }
    assert got.step_states == expected
    events = await store.list_events("exec-1", after=before[-1].seq)
    assert sorted((e.kind, e.key, e.status) for e in events[:-1]) == sorted(
        ("step", key, "cancelled") for key in UNFINISHED
    )
    assert (events[-1].kind, events[-1].key, events[-1].status) == (
        "execution",
        None,
        "cancelled",
    )


async def test_request_cancel_of_a_driven_execution_only_flags_it(store: Store) -> None:
    await create(store, step_states=dict(MIXED_STEPS))
    lease = await drive(store)
    execution_before, events_before = (
        await store.get_execution("exec-1"),
        await store.list_events("exec-1"),
    )

    returned = await store.request_cancel("exec-1", T0 + 5)

    assert returned == execution_before
    assert await store.get_execution("exec-1") == execution_before
    assert await store.list_events("exec-1") == events_before
    renewed = await store.renew_lease(lease, TTL, T0 + 6)
    assert renewed == Lease("exec-1", "driver", lease.token, T0 + 6 + TTL, cancel_requested=True)
    assert (await store.get_execution("exec-1")).status is ExecutionStatus.RUNNING


async def test_a_cancel_request_reaches_the_driver_that_takes_over(store: Store) -> None:
    await create(store)
    await drive(store)
    await store.request_cancel("exec-1", T0 + 5)

    [claimed] = await store.claim_executions("agent", TTL, T0 + TTL + 1, limit=1)

    assert claimed.cancel_requested is True


async def finish_completed(store: Store) -> None:
    await drive(store, status=ExecutionStatus.COMPLETED)


async def finish_failed(store: Store) -> None:
    await store.release_lease(await drive(store, status=ExecutionStatus.FAILED, error="boom"))


async def finish_cancelled(store: Store) -> None:
    await store.request_cancel("exec-1", T0)


FINISHES = {"completed": finish_completed, "failed": finish_failed, "cancelled": finish_cancelled}


@pytest.mark.parametrize("status", list(FINISHES))
async def test_request_cancel_of_a_finished_execution_raises_invalid_transition(
    store: Store, status: str
) -> None:
    await create(store, step_states=dict(MIXED_STEPS))
    await FINISHES[status](store)
    execution_before, events_before = (
        await store.get_execution("exec-1"),
        await store.list_events("exec-1"),
    )

    with pytest.raises(InvalidTransitionError):
        await store.request_cancel("exec-1", T0 + 5)

    assert execution_before.status == status
    assert await store.get_execution("exec-1") == execution_before
    assert await store.list_events("exec-1") == events_before


async def test_request_cancel_of_an_unknown_execution_raises_not_found(store: Store) -> None:
    await create(store)

    with pytest.raises(NotFoundError):
        await store.request_cancel("no-such-execution", T0)


# -- set_definition ---------------------------------------------------------------------------


async def test_set_definition_repoints_the_execution_under_a_valid_lease(store: Store) -> None:
    await create(store, workflow_hash="sha256:v1")
    lease = await drive(store, status=ExecutionStatus.FAILED, error="boom")

    await store.set_definition(lease, "sha256:v2", "id: greet  # v2\n")

    assert (await store.get_execution("exec-1")).workflow_hash == "sha256:v2"
    assert await store.get_definition("sha256:v2") == "id: greet  # v2\n"
    assert await store.get_definition("sha256:v1") == DEFINITION


async def test_a_checkpoint_and_the_mocked_mark_are_kept_with_the_step_state(
    store: Store, harness: StoreHarness
) -> None:
    await create(store)
    lease = await drive(store)
    running = StepState(StepStatus.RUNNING, attempts=1, checkpoint={"task": "t-1"})
    mocked = StepState(StepStatus.COMPLETED, {"x": 1}, attempts=2, mocked=True)

    await store.record_transition(lease, "a", running)
    await store.record_transition(lease, "b", mocked)

    other = await harness.reopen()
    states = (await other.get_execution("exec-1")).step_states
    assert states["a"] == running
    assert states["b"] == mocked
    assert states["b"].mocked is True
    assert states["a"].mocked is False


async def test_a_claim_without_recover_takes_pending_executions_only(store: Store) -> None:
    await create(store, "orphan", created_at=T0)
    lease = await drive(store, "orphan", now=T0)  # its driver dies: the lease lapses
    await create(store, "fresh", created_at=T0 + 1)
    later = lease.expires_at + 1
    claimed = await store.claim_executions("member", TTL, later, limit=10, recover=False)
    assert [c.execution_id for c in claimed] == ["fresh"]
    claimed = await store.claim_executions("leader", TTL, later, limit=10)
    assert [c.execution_id for c in claimed] == ["orphan"]


async def test_list_executions_filters_by_creation_time(store: Store) -> None:
    for n in range(4):
        await create(store, f"e{n}", created_at=T0 + n)
    found = await store.list_executions(since=T0 + 1, before=T0 + 3)
    assert [e.id for e in found] == ["e2", "e1"]
    assert [e.id for e in await store.list_executions(since=T0 + 3)] == ["e3"]
    assert [e.id for e in await store.list_executions(before=T0 + 1)] == ["e0"]


async def test_update_execution_with_release_gives_the_lease_up_in_the_same_write(
    store: Store,
) -> None:
    await create(store)
    lease = await drive(store, now=T0)
    await store.update_execution(lease, ExecutionStatus.FAILED, error="boom", release=True)
    assert await store.list_leases(T0) == []
    again = await store.acquire_lease("exec-1", "resumer", TTL, T0 + 1)  # not held: granted
    assert again.token == lease.token + 1
    with pytest.raises(StaleLeaseError):  # and the former driver is fenced off
        await store.update_execution(lease, ExecutionStatus.RUNNING, release=True)
    assert (await store.get_execution("exec-1")).status is ExecutionStatus.FAILED
