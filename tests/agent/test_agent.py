"""The agent claims due executions and drives them; stopping it leaves them resumable."""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

from sire.agent.agent import Agent
from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine
from sire.model.execution import Execution, ExecutionStatus, StepStatus, new_execution_id
from sire.model.loader import parse_workflow
from sire.model.workflow import Workflow
from sire.storage.base import Store
from sire.testing import FakeClock, MemoryStore

BOUND = 5.0

WORKFLOW = parse_workflow(
    textwrap.dedent("""
        id: two
        steps:
          - {id: a, tool: "sire:local/work"}
          - {id: b, tool: "sire:local/work", needs: [a]}
    """)
)


class Tools:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.running = 0
        self.most = 0
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.server = InProcessServer("t")
        self.server.add_tool(self.work, name="work")

    async def work(self, ctx: DispatchContext, **_: Any) -> dict[str, Any]:
        """Record the call; wait at the gate when there is one."""
        self.calls.append(f"{ctx.execution_id}/{ctx.step_id}")
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            await asyncio.sleep(0)
        finally:
            self.running -= 1
        return {}


def loader(workflow_hash: str, source: str) -> Workflow:
    return parse_workflow(source, digest=workflow_hash)


async def pending(store: Store, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        execution = Execution(new_execution_id(), WORKFLOW.id, WORKFLOW.digest)
        await store.create_execution(execution, WORKFLOW.text)
        ids.append(execution.id)
    return ids


def agent(store: Store, tools: Tools, owner: str, **kw: Any) -> Agent:
    mux = DispatcherMux({"sire": InProcessDispatcher(tools.server)}, entry_points=False)
    engine = Engine(store, mux, owner=owner, clock=kw.pop("clock", None))
    return Agent(engine, loader, poll_interval=0.01, **kw)


async def test_an_agent_drives_every_pending_execution_and_once_exits_when_drained() -> None:
    store, tools = MemoryStore(), Tools()
    ids = await pending(store, 5)
    worker = agent(store, tools, "a1", concurrency=2)
    async with asyncio.timeout(BOUND):
        await worker.run(once=True)
    for execution_id in ids:
        execution = await store.get_execution(execution_id)
        assert execution.status is ExecutionStatus.COMPLETED
    assert sorted(tools.calls) == sorted(f"{i}/{s}" for i in ids for s in "ab")
    assert tools.most <= 2
    assert worker.driven == 5


async def test_stopping_an_agent_leaves_its_executions_resumable_by_another() -> None:
    store, tools = MemoryStore(), Tools()
    (execution_id,) = await pending(store, 1)
    tools.gate = asyncio.Event()
    first = agent(store, tools, "a1")
    stop = asyncio.Event()
    task = asyncio.create_task(first.run(stop=stop))
    async with asyncio.timeout(BOUND):
        await tools.started.wait()
        stop.set()
        await task
    stored = await store.get_execution(execution_id)
    assert stored.status is ExecutionStatus.RUNNING
    assert stored.step_states["a"].status is StepStatus.PENDING
    tools.gate = None
    second = agent(store, tools, "a2")
    async with asyncio.timeout(BOUND):
        await second.run(once=True)  # the lease was released: due at once
    assert (await store.get_execution(execution_id)).status is ExecutionStatus.COMPLETED


async def test_two_agents_never_drive_the_same_execution() -> None:
    store, tools = MemoryStore(), Tools()
    ids = await pending(store, 20)
    workers = [agent(store, tools, f"a{n}", concurrency=3) for n in range(2)]
    async with asyncio.timeout(BOUND):
        await asyncio.gather(*(w.run(once=True) for w in workers))
    assert sorted(tools.calls) == sorted(f"{i}/{s}" for i in ids for s in "ab")
    assert workers[0].driven + workers[1].driven == 20


async def test_a_retrying_execution_waits_for_its_next_attempt() -> None:
    store, tools = MemoryStore(), Tools()
    (execution_id,) = await pending(store, 1)
    lease = await store.acquire_lease(execution_id, "gone", 10, now=0)
    from sire.model.execution import StepState

    await store.record_transition(
        lease, "a", StepState(StepStatus.RETRYING, attempts=1, next_attempt=500.0)
    )
    await store.update_execution(lease, ExecutionStatus.RETRYING)
    await store.release_lease(lease)
    early = agent(store, tools, "a1", clock=FakeClock(start=100.0))
    async with asyncio.timeout(BOUND):
        await early.run(once=True)
    assert tools.calls == []
    late = agent(store, tools, "a2", clock=FakeClock(start=600.0))
    async with asyncio.timeout(BOUND):
        await late.run(once=True)
    assert (await store.get_execution(execution_id)).status is ExecutionStatus.COMPLETED
