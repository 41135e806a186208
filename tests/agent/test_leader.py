"""Agents on one store elect a leader through it; every agent drives pending work, and
only the leader takes over the orphans of a dead driver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sire.agent.agent import LEADER, Agent
from sire.model.execution import ExecutionStatus
from sire.storage.base import Store
from sire.storage.sqlite import open_sqlite

from .test_agent import BOUND, Tools, agent, pending

TTL = 1.0  # seconds the leader lease lasts unrenewed (generous: a loaded machine)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    opened = await open_sqlite(tmp_path / "sire.db")
    try:
        yield opened
    finally:
        await opened.aclose()


async def until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(BOUND):
        while not predicate():  # noqa: ASYNC110 - the agents' state changes by polling too
            await asyncio.sleep(0.01)


async def completed(store: Store, ids: list[str]) -> None:
    """Wait (bounded) until every one of the executions completed."""
    async with asyncio.timeout(BOUND):
        while True:
            found = [await store.get_execution(i) for i in ids]
            if all(e.status is ExecutionStatus.COMPLETED for e in found):
                return
            await asyncio.sleep(0.01)


async def test_one_agent_leads_both_drive_and_the_other_takes_over_when_it_stops(
    store: Store,
) -> None:
    tools = Tools()
    tools.gate = asyncio.Event()  # each call waits: the work must spread over both agents
    first = agent(store, tools, "a1", leader_ttl=TTL, concurrency=2)
    second = agent(store, tools, "a2", leader_ttl=TTL, concurrency=2)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    running_first = asyncio.create_task(first.run(stop=stop_first))
    await until(lambda: first.leadership is not None)
    running_second = asyncio.create_task(second.run(stop=stop_second))
    ids = await pending(store, 4)
    await until(lambda: tools.running == 4)  # two held by each agent
    tools.gate.set()
    await completed(store, ids)
    await until(lambda: first.driven + second.driven == 4)  # drives return after the commit
    assert (first.driven, second.driven) == (2, 2)
    assert second.leadership is None
    members = await store.list_members()
    assert [(m.owner, m.info["leader"]) for m in members] == [("a1", True), ("a2", False)]
    leader = await store.get_leader(LEADER)
    assert leader is not None
    assert (leader.owner, leader.term) == ("a1", 1)

    stop_first.set()  # a1 releases the lease as it stops
    await running_first
    await until(lambda: second.leadership is not None)
    assert second.leadership is not None
    assert second.leadership.term == 2
    more = await pending(store, 2)
    await completed(store, more)
    await until(lambda: second.driven == 4)
    assert [m.owner for m in await store.list_members()] == ["a2"]
    stop_second.set()
    await running_second
    assert await store.get_leader(LEADER) is None
    assert await store.list_members() == []


async def test_a_crashed_leaders_lease_is_taken_over_once_it_lapses(store: Store) -> None:
    crashed = await store.acquire_leadership(LEADER, "gone", TTL, time.time())
    assert crashed is not None
    assert crashed.term == 1
    tools = Tools()
    (execution_id,) = await pending(store, 1)
    # the crashed agent was driving it: an orphan, which only a leader takes over
    orphaned = await store.acquire_lease(execution_id, "gone", TTL / 4, time.time())
    await store.update_execution(orphaned, ExecutionStatus.RUNNING)
    standby: Agent = agent(store, tools, "a2", leader_ttl=TTL)
    stop = asyncio.Event()
    running = asyncio.create_task(standby.run(stop=stop))
    await asyncio.sleep(TTL / 2)
    assert standby.leadership is None
    assert tools.calls == []
    started = time.monotonic()
    await until(lambda: standby.leadership is not None)
    assert time.monotonic() - started < 3 * TTL
    assert standby.leadership is not None
    assert standby.leadership.term == 2
    await completed(store, [execution_id])
    await until(lambda: standby.driven == 1)
    stop.set()
    await running
