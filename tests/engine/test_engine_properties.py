"""Properties of the engine on random DAGs: dependencies first, every step exactly once."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine
from sire.model.execution import Execution, ExecutionStatus, StepStatus
from sire.model.loader import parse_workflow
from sire.testing import FakeClock, MemoryStore


@st.composite
def dags(draw: st.DrawFn) -> tuple[list[list[int]], int, set[int]]:
    """Steps 0..n-1, each needing some earlier steps; a concurrency cap; steps that fail."""
    n = draw(st.integers(min_value=1, max_value=14))
    needs = [
        sorted(draw(st.sets(st.integers(0, i - 1), max_size=3))) if i else [] for i in range(n)
    ]
    cap = draw(st.integers(min_value=1, max_value=6))
    failing = draw(st.sets(st.integers(0, n - 1), max_size=2))
    return needs, cap, failing


def workflow_text(needs: list[list[int]], cap: int, failing: set[int]) -> str:
    lines = ["id: random", f"max_concurrency: {cap}", "steps:"]
    for i, parents in enumerate(needs):
        fail = "true" if i in failing else "false"
        after = ", ".join(f"s{p}" for p in parents)
        lines.append(
            f'  - {{id: s{i}, tool: "sire:local/work", needs: [{after}], with: {{fail: {fail}}}}}'
        )
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(dags())
def test_no_step_starts_before_its_dependencies_and_each_runs_at_most_once(
    dag: tuple[list[list[int]], int, set[int]],
) -> None:
    needs, cap, failing = dag
    events: list[tuple[str, str]] = []
    running = [0, 0]  # now, most at once
    server = InProcessServer("t")

    async def work(ctx: DispatchContext, fail: bool) -> dict[str, Any]:
        events.append(("start", ctx.step_id))
        running[0] += 1
        running[1] = max(running)
        await asyncio.sleep(0)
        running[0] -= 1
        events.append(("end", ctx.step_id))
        if fail:
            raise ValueError("told to fail")
        return {}

    server.add_tool(work, name="work")
    workflow = parse_workflow(workflow_text(needs, cap, failing))

    async def run() -> Execution:
        store = MemoryStore()
        engine = Engine(
            store, DispatcherMux({"sire": InProcessDispatcher(server)}), clock=FakeClock()
        )
        execution = Execution("e", workflow.id, workflow.digest)
        await store.create_execution(execution, workflow.text)
        async with asyncio.timeout(10):
            return await engine.run(workflow, execution)

    execution = asyncio.run(run())
    starts = [step for kind, step in events if kind == "start"]
    assert len(starts) == len(set(starts)), "a step ran twice"
    ended = set()
    for kind, step in events:
        if kind == "start":
            for parent in needs[int(step[1:])]:
                assert f"s{parent}" in ended, f"{step} started before {parent} ended"
        else:
            ended.add(step)
    assert running[1] <= cap
    states = execution.step_states
    for i, parents in enumerate(needs):
        parent_ok = all(states[f"s{p}"].status is StepStatus.COMPLETED for p in parents)
        expected = (
            (StepStatus.FAILED if i in failing else StepStatus.COMPLETED)
            if parent_ok
            else StepStatus.SKIPPED
        )
        assert states[f"s{i}"].status is expected
    any_failed = any(s.status is StepStatus.FAILED for s in states.values())
    assert execution.status is (ExecutionStatus.FAILED if any_failed else ExecutionStatus.COMPLETED)
