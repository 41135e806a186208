"""A StepGate (the debugger's seam) steers the engine: run, edit, skip, retry, quit, hold."""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine, NullObserver
from sire.engine.gate import QUIT, RUN, SKIP, SKIPPED_IN_DEBUGGER, Decision, GateStop, Verdict
from sire.errors import ToolError
from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus, new_execution_id
from sire.model.loader import parse_workflow
from sire.model.workflow import Workflow
from sire.testing import FakeClock, MemoryStore

BOUND = 5.0  # seconds any coordinated wait may take before the test fails


class Tools:
    """`work` records each call and its context; it can be held on an event or made to fail."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.contexts: dict[str, DispatchContext] = {}
        self.holds: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}
        self.failures: dict[str, int] = {}
        self.cancelled: list[str] = []
        self.server = InProcessServer("test")
        self.server.add_tool(self.work, name="work")

    def hold(self, label: str) -> asyncio.Event:
        self.started[label] = asyncio.Event()
        return self.holds.setdefault(label, asyncio.Event())

    async def work(
        self, ctx: DispatchContext, value: Any = None, **inherited: Any
    ) -> dict[str, Any]:
        """Record the call; wait on its hold; fail while told to."""
        label = ctx.step_id if ctx.item_index is None else f"{ctx.step_id}/{ctx.item_index}"
        self.calls.append(label)
        self.contexts[label] = ctx
        if label in self.started:
            self.started[label].set()
        try:
            if label in self.holds:
                await self.holds[label].wait()
        except asyncio.CancelledError:
            self.cancelled.append(label)
            raise
        if self.failures.get(label, 0) > 0:
            self.failures[label] -= 1
            raise ToolError(f"{label} broke")
        return {"by": label, "value": value}


class ScriptedGate:
    """Answers from a script; can hold the question about a step until an event is set."""

    def __init__(
        self,
        before: dict[str, Decision] | None = None,
        after: dict[str, list[Decision | None]] | None = None,
    ) -> None:
        self.before = before or {}
        self.after = after or {}
        self.asked: list[tuple[str, str, Any]] = []
        self.holds: dict[str, asyncio.Event] = {}
        self.holding: dict[str, asyncio.Event] = {}

    def hold(self, key: str) -> asyncio.Event:
        self.holding[key] = asyncio.Event()
        return self.holds.setdefault(key, asyncio.Event())

    async def before_step(self, stop: GateStop) -> Decision:
        seen = stop.params if stop.items is None else list(stop.items)
        self.asked.append(("before", stop.key, seen))
        if stop.key in self.holds:
            self.holding[stop.key].set()
            await self.holds[stop.key].wait()
        return self.before.get(stop.key, RUN)

    async def after_failure(self, stop: GateStop) -> Decision | None:
        self.asked.append(("after", stop.key, stop.error))
        answers = self.after.get(stop.key)
        return answers.pop(0) if answers else None


class Completions(NullObserver):
    """Sets an event when a step's completion has been persisted."""

    def __init__(self) -> None:
        self.completed: dict[str, asyncio.Event] = {}

    def when_completed(self, key: str) -> asyncio.Event:
        return self.completed.setdefault(key, asyncio.Event())

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
        if state.status is StepStatus.COMPLETED and key in self.completed:
            self.completed[key].set()


def workflow(text: str) -> Workflow:
    return parse_workflow(textwrap.dedent(text), source="test.yaml")


async def start(
    store: MemoryStore, wf: Workflow, inputs: dict[str, Any] | None = None
) -> Execution:
    execution = Execution(new_execution_id(), wf.id, wf.digest, inputs=inputs or {})
    await store.create_execution(execution, wf.text)
    return execution


def engine(
    store: MemoryStore,
    tools: Tools,
    gate: Any = None,
    observer: Any = None,
) -> Engine:
    mux = DispatcherMux({"sire": InProcessDispatcher(tools.server)}, entry_points=False)
    return Engine(store, mux, clock=FakeClock(), gate=gate, observer=observer)


async def drive(
    store: MemoryStore, tools: Tools, gate: Any, wf: Workflow, execution: Execution
) -> Execution:
    async with asyncio.timeout(BOUND):
        return await engine(store, tools, gate).run(wf, execution)


CHAIN = """
    id: chain
    inputs:
      n: {type: integer, default: 3}
    steps:
      - {id: a, tool: "sire:local/work", with: {value: "{{ inputs.n }}"}}
      - {id: b, tool: "sire:local/work", with: {value: "{{ steps.a.output.value * 2 }}"}}
      - {id: c, tool: "sire:local/work", needs: [b]}
"""


async def test_the_gate_is_asked_before_each_step_with_its_rendered_params() -> None:
    store, tools, gate, wf = MemoryStore(), Tools(), ScriptedGate(), workflow(CHAIN)
    execution = await drive(store, tools, gate, wf, await start(store, wf, {"n": 3}))
    assert execution.status is ExecutionStatus.COMPLETED
    assert [(when, key) for when, key, _ in gate.asked] == [
        ("before", "a"),
        ("before", "b"),
        ("before", "c"),
    ]
    assert gate.asked[0][2] == {"value": 3}
    assert gate.asked[1][2] == {"value": 6}


async def test_edited_params_reach_the_tool_under_a_new_idempotency_key() -> None:
    store, tools, wf = MemoryStore(), Tools(), workflow(CHAIN)
    gate = ScriptedGate(before={"a": Decision(Verdict.RUN, {"value": 50})})
    execution = await start(store, wf, {"n": 3})
    execution = await drive(store, tools, gate, wf, execution)
    assert execution.step_states["a"].output == {"by": "a", "value": 50}
    assert execution.step_states["b"].output == {"by": "b", "value": 100}
    assert tools.contexts["a"].idempotency_key.startswith(f"{execution.id}/a#")
    assert tools.contexts["b"].idempotency_key == f"{execution.id}/b"


async def test_a_skipped_step_ends_skipped_and_its_dependents_too() -> None:
    store, tools = MemoryStore(), Tools()
    wf = workflow("""
        id: t
        steps:
          - {id: a, tool: "sire:local/work"}
          - {id: b, tool: "sire:local/work", needs: [a]}
          - {id: other, tool: "sire:local/work"}
    """)
    gate = ScriptedGate(before={"a": SKIP})
    execution = await drive(store, tools, gate, wf, await start(store, wf))
    assert execution.status is ExecutionStatus.COMPLETED
    assert execution.step_states["a"].status is StepStatus.SKIPPED
    assert execution.step_states["a"].error == SKIPPED_IN_DEBUGGER
    assert execution.step_states["b"].status is StepStatus.SKIPPED
    assert sorted(tools.calls) == ["other"]
    stored = await store.get_execution(execution.id)
    assert stored.step_states["a"].error == SKIPPED_IN_DEBUGGER


async def test_quit_interrupts_the_run_leaving_it_resumable_and_cancels_running_calls() -> None:
    store, tools = MemoryStore(), Tools()
    wf = workflow("""
        id: t
        steps:
          - {id: a, tool: "sire:local/work"}
          - {id: slow, tool: "sire:local/work"}
          - {id: b, tool: "sire:local/work", needs: [a]}
    """)
    tools.hold("slow")
    gate = ScriptedGate(before={"b": QUIT})
    execution = await start(store, wf)
    run = asyncio.create_task(engine(store, tools, gate).run(wf, execution))
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(BOUND):
            await run
    stored = await store.get_execution(execution.id)
    assert stored.status is ExecutionStatus.RUNNING  # resumable, not cancelled
    assert stored.step_states["a"].status is StepStatus.COMPLETED
    assert "b" not in stored.step_states
    assert stored.step_states["slow"].status is StepStatus.PENDING  # interrupted mid-call
    assert tools.cancelled == ["slow"]

    # The lease was given back: another driver (here, with a new gate) finishes it.
    tools.holds["slow"].set()
    again = ScriptedGate()
    resumed = await drive(store, tools, again, wf, stored)
    assert resumed.status is ExecutionStatus.COMPLETED
    assert tools.calls.count("a") == 1
    assert sorted(key for _, key, _ in again.asked) == ["b", "slow"]  # not `a`: completed


async def test_after_a_failure_the_gate_may_retry_with_a_fresh_attempt_and_edited_params() -> None:
    store, tools = MemoryStore(), Tools()
    wf = workflow("""
        id: t
        steps:
          - {id: a, tool: "sire:local/work", with: {value: 1}}
          - {id: b, tool: "sire:local/work", needs: [a]}
    """)
    tools.failures["a"] = 2
    gate = ScriptedGate(after={"a": [RUN, Decision(Verdict.RUN, {"value": 7})]})
    execution = await start(store, wf)
    execution = await drive(store, tools, gate, wf, execution)
    assert execution.status is ExecutionStatus.COMPLETED
    assert [entry for entry in gate.asked if entry[0] == "after"] == [
        ("after", "a", "a broke"),
        ("after", "a", "a broke"),
    ]
    state = execution.step_states["a"]
    assert (state.status, state.attempts, state.output) == (
        StepStatus.COMPLETED,
        3,
        {"by": "a", "value": 7},
    )
    assert tools.contexts["a"].attempt == 3
    assert tools.contexts["a"].idempotency_key.startswith(f"{execution.id}/a#")


async def test_a_failure_the_gate_lets_stand_fails_the_step_and_the_execution() -> None:
    store, tools = MemoryStore(), Tools()
    wf = workflow("""
        id: t
        steps:
          - {id: a, tool: "sire:local/work"}
          - {id: b, tool: "sire:local/work", needs: [a]}
    """)
    tools.failures["a"] = 1
    gate = ScriptedGate(after={"a": [None]})
    execution = await drive(store, tools, gate, wf, await start(store, wf))
    assert execution.status is ExecutionStatus.FAILED
    assert execution.step_states["a"].status is StepStatus.FAILED
    assert execution.step_states["b"].status is StepStatus.SKIPPED


async def test_a_failed_step_skipped_by_the_gate_lets_the_execution_complete() -> None:
    store, tools = MemoryStore(), Tools()
    wf = workflow("""
        id: t
        steps:
          - {id: a, tool: "sire:local/work"}
          - {id: b, tool: "sire:local/work", needs: [a]}
    """)
    tools.failures["a"] = 1
    gate = ScriptedGate(after={"a": [SKIP]})
    execution = await drive(store, tools, gate, wf, await start(store, wf))
    assert execution.status is ExecutionStatus.COMPLETED
    assert execution.step_states["a"].status is StepStatus.SKIPPED
    assert execution.step_states["b"].status is StepStatus.SKIPPED


async def test_while_the_gate_holds_a_step_no_new_step_starts_but_running_ones_finish() -> None:
    store, tools, observer = MemoryStore(), Tools(), Completions()
    wf = workflow("""
        id: t
        steps:
          - {id: slow, tool: "sire:local/work"}
          - {id: held, tool: "sire:local/work"}
          - {id: after_slow, tool: "sire:local/work", needs: [slow]}
    """)
    release_slow = tools.hold("slow")
    gate = ScriptedGate()
    release_held = gate.hold("held")
    slow_completed = observer.when_completed("slow")
    execution = await start(store, wf)
    run = asyncio.create_task(engine(store, tools, gate, observer).run(wf, execution))
    async with asyncio.timeout(BOUND):
        await tools.started["slow"].wait()
        await gate.holding["held"].wait()
        release_slow.set()  # the running step finishes while `held` is held ...
        await slow_completed.wait()
        for _ in range(20):  # ... and its dependent, now ready, gets every chance to start
            await asyncio.sleep(0)
        assert tools.calls == ["slow"]
        assert [key for _, key, _ in gate.asked] == ["slow", "held"]
        release_held.set()
        execution = await run
    assert execution.status is ExecutionStatus.COMPLETED
    assert [key for _, key, _ in gate.asked] == ["slow", "held", "after_slow"]
    assert tools.calls == ["slow", "held", "after_slow"]


async def test_a_for_each_step_is_asked_about_once_and_each_failed_item_on_its_own() -> None:
    store, tools = MemoryStore(), Tools()
    wf = workflow("""
        id: t
        steps:
          - {id: fan, tool: "sire:local/work", for_each: "{{ [1, 2, 3] }}",
             with: {value: "{{ item }}"}, max_concurrency: 1}
    """)
    tools.failures["fan/1"] = 1
    gate = ScriptedGate(after={"fan/1": [SKIP]})
    execution = await drive(store, tools, gate, wf, await start(store, wf))
    assert gate.asked == [("before", "fan", [1, 2, 3]), ("after", "fan/1", "fan/1 broke")]
    assert execution.status is ExecutionStatus.COMPLETED
    items = execution.step_states["fan"].output["items"]
    assert items == [{"by": "fan/0", "value": 1}, None, {"by": "fan/2", "value": 3}]
    assert execution.step_states["fan/1"].error == SKIPPED_IN_DEBUGGER


async def test_a_for_each_step_skipped_before_it_starts_runs_no_item() -> None:
    store, tools = MemoryStore(), Tools()
    wf = workflow("""
        id: t
        steps:
          - {id: fan, tool: "sire:local/work", for_each: "{{ [1, 2] }}", with: {value: 1}}
          - {id: after, tool: "sire:local/work", needs: [fan]}
    """)
    gate = ScriptedGate(before={"fan": SKIP})
    execution = await drive(store, tools, gate, wf, await start(store, wf))
    assert tools.calls == []
    assert execution.step_states["fan"].status is StepStatus.SKIPPED
    assert execution.step_states["after"].status is StepStatus.SKIPPED
