"""The Store contract for agents: the leader lease and its term, member heartbeats.

Runs on every store (see conftest.py); durable stores are also read back through a
fresh connection.
"""

from __future__ import annotations

import pytest

from sire.errors import StaleLeaseError
from sire.storage.base import Leadership, Store

from .conftest import StoreHarness


async def test_the_first_owner_leads_and_a_second_is_refused_while_the_lease_lives(
    store: Store, harness: StoreHarness
) -> None:
    first = await store.acquire_leadership("agents", "a1", 10.0, now=100.0)
    assert first == Leadership("agents", "a1", 1, 110.0)
    assert await store.acquire_leadership("agents", "a2", 10.0, now=109.0) is None
    again = await store.acquire_leadership("agents", "a1", 10.0, now=105.0)
    assert again == Leadership("agents", "a1", 1, 115.0)  # kept: the term stays
    other = await harness.reopen()
    assert await other.get_leader("agents") == Leadership("agents", "a1", 1, 115.0)
    assert await other.get_leader("elsewhere") is None


async def test_a_takeover_after_expiry_moves_the_term_and_fences_the_former_leader(
    store: Store,
) -> None:
    first = await store.acquire_leadership("agents", "a1", 10.0, now=100.0)
    assert first is not None
    renewed = await store.renew_leadership(first, 10.0, now=108.0)
    assert renewed == Leadership("agents", "a1", 1, 118.0)
    assert await store.acquire_leadership("agents", "a2", 10.0, now=117.9) is None
    second = await store.acquire_leadership("agents", "a2", 10.0, now=118.0)
    assert second == Leadership("agents", "a2", 2, 128.0)
    with pytest.raises(StaleLeaseError, match="term 1 of a1 is stale"):
        await store.renew_leadership(renewed, 10.0, now=119.0)
    await store.release_leadership(renewed)  # stale: a no-op
    assert await store.get_leader("agents") == second


async def test_releasing_lets_another_lead_at_once_with_a_higher_term(store: Store) -> None:
    first = await store.acquire_leadership("agents", "a1", 10.0, now=100.0)
    assert first is not None
    await store.release_leadership(first)
    assert await store.get_leader("agents") is None
    with pytest.raises(StaleLeaseError):
        await store.renew_leadership(first, 10.0, now=101.0)
    second = await store.acquire_leadership("agents", "a2", 10.0, now=101.0)
    assert second == Leadership("agents", "a2", 2, 111.0)
    # the same owner taking a lapsed lease again is a new term too
    third = await store.acquire_leadership("agents", "a2", 10.0, now=200.0)
    assert third == Leadership("agents", "a2", 3, 210.0)


async def test_members_heartbeat_list_since_and_leave(store: Store, harness: StoreHarness) -> None:
    await store.heartbeat_member("b", 10.0, {"pid": 2, "host": "h"})
    await store.heartbeat_member("a", 11.0, {"pid": 1})
    await store.heartbeat_member("b", 12.0, {"pid": 3})
    other = await harness.reopen()
    members = await other.list_members()
    assert [(m.owner, m.last_seen, dict(m.info)) for m in members] == [
        ("a", 11.0, {"pid": 1}),
        ("b", 12.0, {"pid": 3}),
    ]
    assert [m.owner for m in await other.list_members(since=11.5)] == ["b"]
    await store.remove_member("b")
    await store.remove_member("nobody")
    assert [m.owner for m in await store.list_members()] == ["a"]


async def test_list_leases_gives_the_live_leases_on_unfinished_executions(
    store: Store, harness: StoreHarness
) -> None:
    from sire.model.execution import ExecutionStatus

    from .test_store import T0, TTL, create

    for name in ("e1", "e2", "e3", "e4", "e5"):
        await create(store, name, created_at=T0 + int(name[1]))
    # the leader claims for two members: oldest first, each a lease of its own
    for_a = await store.claim_executions("a", TTL, T0, limit=2)
    for_b = await store.claim_executions("b", TTL / 2, T0, limit=2)
    assert [lease.execution_id for lease in for_a + for_b] == ["e1", "e2", "e3", "e4"]
    assert await store.list_leases(T0) == for_a + for_b
    other = await harness.reopen()
    assert await other.list_leases(T0, owner="b") == for_b
    assert await other.list_leases(T0, owner="nobody") == []

    # expired, released and finished ones are not live
    assert await store.list_leases(T0 + TTL / 2) == for_a
    await store.release_lease(for_a[0])
    await store.update_execution(for_a[1], ExecutionStatus.COMPLETED)
    assert await store.list_leases(T0) == for_b
    # a cancel request rides on the lease
    await store.request_cancel("e3", T0)
    (flagged, _) = await store.list_leases(T0, owner="b")
    assert flagged == for_b[0]._replace(cancel_requested=True)
