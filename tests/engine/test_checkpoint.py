"""Checkpoints: a running attempt saves where it is; a resumed attempt picks it up.

This is how a remote MCP task survives a crash: its id is checkpointed with the running
step, and the resumed step polls that task instead of calling the tool again.
"""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine
from sire.model.execution import Execution, ExecutionStatus, StepStatus, new_execution_id
from sire.model.loader import parse_workflow
from sire.storage import open_store

WORKFLOW = parse_workflow(
    textwrap.dedent("""
        id: t
        steps:
          - {id: long, tool: "sire:local/long"}
          - {id: after, tool: "sire:local/long", needs: [long]}
    """),
    source="test.yaml",
)


class LongTool:
    """Starts 'remote work' once, checkpoints its id, and finishes it when resumed."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.resumed: list[dict[str, Any]] = []
        self.checkpointed = asyncio.Event()
        self.block = True
        self.server = InProcessServer("test")
        self.server.add_tool(self.long, name="long")

    async def long(self, ctx: DispatchContext, **inherited: Any) -> dict[str, Any]:
        if ctx.resume:
            self.resumed.append(dict(ctx.resume))
            return {"task": ctx.resume["task"], "resumed": True}
        task = f"task-{len(self.started) + 1}"
        self.started.append(task)
        await ctx.checkpoint({"task": task})
        self.checkpointed.set()
        if self.block and ctx.step_id == "long":
            await asyncio.Event().wait()
        return {"task": task, "resumed": False}


def engine(store: Any, tool: LongTool) -> Engine:
    mux = DispatcherMux({"sire": InProcessDispatcher(tool.server)}, entry_points=False)
    return Engine(store, mux)


async def test_a_resumed_attempt_gets_the_checkpoint_instead_of_starting_over(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'sire.db'}"
    tool = LongTool()
    store = await open_store(url, home=tmp_path)
    execution = Execution(new_execution_id(), WORKFLOW.id, WORKFLOW.digest)
    await store.create_execution(execution, WORKFLOW.text)
    run = asyncio.create_task(engine(store, tool).run(WORKFLOW, execution))
    async with asyncio.timeout(5):
        await tool.checkpointed.wait()
    # The checkpoint is durable while the call still runs: another reader sees it.
    reader = await open_store(url, home=tmp_path)
    seen = (await reader.get_execution(execution.id)).step_states["long"]
    assert seen.status is StepStatus.RUNNING
    assert seen.checkpoint == {"task": "task-1"}
    await reader.aclose()
    run.cancel()  # interrupted, as by Ctrl-C: resumable
    with pytest.raises(asyncio.CancelledError):
        await run
    await store.aclose()

    store = await open_store(url, home=tmp_path)
    stored = await store.get_execution(execution.id)
    assert stored.step_states["long"].status is StepStatus.PENDING
    assert stored.step_states["long"].checkpoint == {"task": "task-1"}
    async with asyncio.timeout(5):
        done = await engine(store, tool).run(WORKFLOW, stored)
    assert done.status is ExecutionStatus.COMPLETED, done.error
    assert tool.started == ["task-1", "task-2"]  # `after` started its own, once
    assert tool.resumed == [{"task": "task-1"}]
    assert done.step_states["long"].output == {"task": "task-1", "resumed": True}
    # A finished step keeps no checkpoint: nothing is left to resume.
    assert done.step_states["long"].checkpoint is None
    final = await store.get_execution(execution.id)
    assert final.step_states["long"].checkpoint is None
    await store.aclose()


async def test_a_retry_after_a_failure_starts_afresh(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []
    server = InProcessServer("test")

    async def flaky(ctx: DispatchContext) -> dict[str, Any]:
        calls.append(dict(ctx.resume))
        await ctx.checkpoint({"task": f"t{ctx.attempt}"})
        if ctx.attempt == 1:
            raise RuntimeError("boom")
        return {"attempt": ctx.attempt}

    server.add_tool(flaky, name="flaky")
    wf = parse_workflow(
        'id: t\nsteps:\n  - {id: s, tool: "sire:local/flaky", retry: {max_attempts: 2, '
        "initial_interval: 0s}}\n",
        source="t.yaml",
    )
    store = await open_store(f"sqlite:///{tmp_path / 'sire.db'}", home=tmp_path)
    execution = Execution(new_execution_id(), wf.id, wf.digest)
    await store.create_execution(execution, wf.text)
    mux = DispatcherMux({"sire": InProcessDispatcher(server)}, entry_points=False)
    async with asyncio.timeout(5):
        done = await Engine(store, mux).run(wf, execution)
    await store.aclose()
    assert done.status is ExecutionStatus.COMPLETED, done.error
    assert calls == [{}, {}]
