"""The engine drives executions: order, concurrency, templates, failure, timeouts, cancel."""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine
from sire.errors import StaleLeaseError, ToolError
from sire.model.execution import (
    Execution,
    ExecutionStatus,
    StepState,
    StepStatus,
    new_execution_id,
)
from sire.model.inputs import resolve_inputs
from sire.model.loader import parse_workflow
from sire.model.workflow import Workflow
from sire.storage.base import Lease
from sire.testing import FakeClock, MemoryStore

BOUND = 5.0  # seconds any coordinated wait may take before the test fails


class Recorder:
    """Tools whose calls are recorded in order, with hooks to block or fail them."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.contexts: dict[str, DispatchContext] = {}
        self.gates: dict[str, asyncio.Event] = {}
        self.started: dict[str, asyncio.Event] = {}
        self.finished: dict[str, asyncio.Event] = {}
        self.failures: dict[str, int] = {}
        self.running = 0
        self.max_running = 0
        self.cancelled: list[str] = []
        self.server = InProcessServer("test")
        self.server.add_tool(self.work, name="work")
        self.server.add_tool(self.echo, name="echo")

    def done(self, name: str) -> asyncio.Event:
        """An event set when the call labelled `name` returns or raises."""
        return self.finished.setdefault(name, asyncio.Event())

    def gate(self, name: str) -> asyncio.Event:
        self.started[name] = asyncio.Event()
        return self.gates.setdefault(name, asyncio.Event())

    async def work(
        self, ctx: DispatchContext, name: str = "", value: Any = None, **inherited: Any
    ) -> dict[str, Any]:
        """Record the call, wait on its gate if any, fail if told to.

        Steps without `with:` inherit their parents' outputs, so `name` is read only
        from an explicit `with:` (the `for_each` tests); otherwise the step id labels.
        """
        label = name if ctx.item_index is not None else ctx.step_id
        self.contexts[label] = ctx
        self.events.append(f"start {label}")
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if label in self.started:
                self.started[label].set()
            if label in self.gates:
                await self.gates[label].wait()
            else:
                await asyncio.sleep(0)
            if self.failures.get(label, 0) > 0:
                self.failures[label] -= 1
                raise ToolError(f"{label} broke")
        except asyncio.CancelledError:
            self.cancelled.append(label)
            raise
        finally:
            self.running -= 1
            if label in self.finished:
                self.finished[label].set()
        self.events.append(f"end {label}")
        return {"by": label, "value": value}

    def echo(self, **params: Any) -> dict[str, Any]:
        """Return the arguments."""
        return dict(params)


@pytest.fixture
def tools() -> Recorder:
    return Recorder()


Runner = Callable[..., Awaitable[Execution]]


@pytest.fixture
def run(tools: Recorder) -> Runner:
    async def run(
        workflow: Workflow,
        inputs: dict[str, Any] | None = None,
        *,
        store: MemoryStore | None = None,
        clock: FakeClock | None = None,
        execution: Execution | None = None,
    ) -> Execution:
        store = store or MemoryStore()
        mux = DispatcherMux({"sire": InProcessDispatcher(tools.server)}, entry_points=False)
        engine = Engine(store, mux, clock=clock or FakeClock())
        if execution is None:
            values = resolve_inputs(workflow, inputs or {})
            execution = Execution(new_execution_id(), workflow.id, workflow.digest, inputs=values)
            await store.create_execution(execution, workflow.text)
        async with asyncio.timeout(BOUND):
            return await engine.run(workflow, execution)

    return run


def workflow(text: str) -> Workflow:
    return parse_workflow(textwrap.dedent(text), source="test.yaml")


async def test_a_step_starts_when_its_own_dependencies_finish_not_its_layer(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: slow, tool: "sire:local/work"}
          - {id: fast, tool: "sire:local/work"}
          - {id: after_fast, tool: "sire:local/work", needs: [fast]}
          - {id: after_both, tool: "sire:local/work", needs: [slow, fast]}
    """)
    gate = tools.gate("slow")
    after_fast = tools.done("after_fast")

    async def release_slow_after_after_fast() -> None:
        await after_fast.wait()
        gate.set()

    async with asyncio.TaskGroup() as group:
        group.create_task(release_slow_after_after_fast())
        execution = await run(wf)
    assert execution.status is ExecutionStatus.COMPLETED
    events = tools.events
    assert events.index("end after_fast") < events.index("end slow")
    assert events.index("end slow") < events.index("start after_both")


async def test_independent_steps_run_concurrently(tools: Recorder, run: Runner) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: a, tool: "sire:local/work"}
          - {id: b, tool: "sire:local/work"}
    """)
    gate_a, gate_b = tools.gate("a"), tools.gate("b")

    async def open_both_once_both_started() -> None:
        await tools.started["a"].wait()
        await tools.started["b"].wait()
        gate_a.set()
        gate_b.set()

    async with asyncio.TaskGroup() as group:
        group.create_task(open_both_once_both_started())
        execution = await run(wf)
    assert execution.status is ExecutionStatus.COMPLETED
    assert tools.max_running == 2


async def test_max_concurrency_bounds_running_tool_calls(tools: Recorder, run: Runner) -> None:
    steps = "\n".join(f'  - {{id: s{i}, tool: "sire:local/work"}}' for i in range(6))
    wf = parse_workflow(f"id: t\nmax_concurrency: 2\nsteps:\n{steps}\n")
    execution = await run(wf)
    assert execution.status is ExecutionStatus.COMPLETED
    assert tools.max_running == 2


async def test_single_expression_templates_keep_native_types(run: Runner) -> None:
    wf = workflow("""
        id: t
        inputs:
          n: {type: integer, default: 3}
          flags: {type: object, default: {on: true}}
        steps:
          - id: first
            tool: sire:local/echo
            with:
              n: "{{ inputs.n }}"
              doubled: "{{ inputs.n * 2 }}"
              half: "{{ inputs.n / 2 }}"
              items: "{{ [1, 'two', none] }}"
              flags: "{{ inputs.flags }}"
              on: "{{ inputs.flags.on }}"
              text: "n is {{ inputs.n }}"
              literal: 7
          - id: second
            tool: sire:local/echo
            with: {n_plus_one: "{{ steps.first.output.n + 1 }}"}
    """)
    execution = await run(wf)
    first = execution.step_states["first"].output
    assert first == {
        "n": 3,
        "doubled": 6,
        "half": 1.5,
        "items": [1, "two", None],
        "flags": {"on": True},
        "on": True,
        "text": "n is 3",
        "literal": 7,
    }
    assert execution.step_states["second"].output == {"n_plus_one": 4}


async def test_a_step_without_with_gets_inputs_overlaid_by_parent_outputs(run: Runner) -> None:
    wf = workflow("""
        id: t
        inputs:
          a: {default: input}
          b: {default: input}
        steps:
          - {id: p1, tool: "sire:local/echo", with: {b: p1, c: p1}}
          - {id: p2, tool: "sire:local/echo", with: {c: p2}}
          - {id: child, tool: "sire:local/echo", needs: [p1, p2]}
    """)
    execution = await run(wf, {"a": "input", "b": "input"})
    assert execution.step_states["child"].output == {"a": "input", "b": "p1", "c": "p2"}


async def test_if_false_skips_the_step_and_its_dependents(tools: Recorder, run: Runner) -> None:
    wf = workflow("""
        id: t
        inputs:
          go: {type: boolean, default: false}
        steps:
          - {id: maybe, tool: "sire:local/work", if: "{{ inputs.go }}"}
          - {id: after, tool: "sire:local/work", needs: [maybe]}
          - {id: anyway, tool: "sire:local/echo", needs: [maybe], needs_any: true}
          - id: joined
            tool: sire:local/echo
            needs_any: true
            with: {from_maybe: "{{ steps.maybe.output }}", other: "{{ steps.other.output.x }}"}
          - {id: other, tool: "sire:local/echo", with: {x: 1}}
    """)
    execution = await run(wf, {"go": False})
    states = execution.step_states
    assert states["maybe"].status is StepStatus.SKIPPED
    assert states["after"].status is StepStatus.SKIPPED
    assert states["anyway"].status is StepStatus.SKIPPED  # no parent completed
    assert states["joined"].status is StepStatus.COMPLETED
    assert states["joined"].output == {"from_maybe": None, "other": 1}
    assert tools.events == []
    assert execution.status is ExecutionStatus.COMPLETED


async def test_for_each_runs_the_tool_once_per_item_with_item_and_index(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - id: each
            tool: sire:local/work
            for_each: "{{ ['a', 'b', 'c', 'd'] }}"
            max_concurrency: 2
            with: {name: "{{ index }}-{{ item }}", value: "{{ index }}"}
          - {id: after, tool: "sire:local/echo", with: {got: "{{ steps.each.output.items }}"}}
    """)
    execution = await run(wf)
    items = [{"by": f"{i}-{c}", "value": i} for i, c in enumerate("abcd")]
    assert execution.step_states["each"].output == {"items": items}
    assert execution.step_states["after"].output == {"got": items}
    for index in range(4):
        state = execution.step_states[f"each/{index}"]
        assert state.status is StepStatus.COMPLETED
        assert state.output == items[index]
        ctx = tools.contexts[items[index]["by"]]
        assert ctx.item_index == index
        assert ctx.idempotency_key == f"{execution.id}/each/{index}"
    assert tools.max_running == 2


async def test_a_failing_item_fails_its_step_and_names_the_item(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - id: each
            tool: sire:local/work
            for_each: "{{ ['ok', 'bad'] }}"
            with: {name: "{{ item }}"}
    """)
    tools.failures["bad"] = 1
    execution = await run(wf)
    assert execution.step_states["each/0"].status is StepStatus.COMPLETED
    assert execution.step_states["each/1"].status is StepStatus.FAILED
    assert execution.step_states["each"].error == "1 of 2 items failed; item 1: bad broke"
    assert execution.status is ExecutionStatus.FAILED


async def test_a_failed_step_fails_the_execution_after_independent_branches_finish(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: broken, tool: "sire:local/work"}
          - {id: child, tool: "sire:local/work", needs: [broken]}
          - {id: grandchild, tool: "sire:local/work", needs: [child]}
          - {id: independent, tool: "sire:local/work"}
          - {id: after_independent, tool: "sire:local/work", needs: [independent]}
    """)
    tools.failures["broken"] = 1
    gate = tools.gate("independent")
    broken = tools.done("broken")

    async def release_after_failure() -> None:
        await broken.wait()
        gate.set()

    store = MemoryStore()
    async with asyncio.TaskGroup() as group:
        group.create_task(release_after_failure())
        execution = await run(wf, store=store)
    states = execution.step_states
    assert states["broken"].status is StepStatus.FAILED
    assert states["broken"].error == "broken broke"
    assert states["child"].status is StepStatus.SKIPPED
    assert states["child"].error == "parent 'broken' failed"
    assert states["grandchild"].status is StepStatus.SKIPPED
    assert states["after_independent"].status is StepStatus.COMPLETED
    assert execution.status is ExecutionStatus.FAILED
    assert execution.error == "step 'broken' failed: broken broke"
    stored = await store.get_execution(execution.id)
    assert stored.status is ExecutionStatus.FAILED


async def test_a_step_that_exceeds_its_timeout_fails_and_its_call_is_cancelled(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: stuck, tool: "sire:local/work", timeout: 10ms}
    """)
    tools.gate("stuck")  # never opened
    execution = await run(wf)
    assert execution.step_states["stuck"].status is StepStatus.FAILED
    assert execution.step_states["stuck"].error == "timed out after 10ms"
    assert tools.cancelled == ["stuck"]


async def test_retries_back_off_by_the_policy_and_then_succeed(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - id: flaky
            tool: sire:local/work
            retry: {max_attempts: 4, initial_interval: 1s, backoff: 3, max_interval: 5s}
    """)
    tools.failures["flaky"] = 3
    clock = FakeClock()
    execution = await run(wf, clock=clock)
    state = execution.step_states["flaky"]
    assert state.status is StepStatus.COMPLETED
    assert state.attempts == 4
    assert clock.sleeps == [1.0, 3.0, 5.0]
    assert tools.contexts["flaky"].attempt == 4


async def test_retries_stop_at_max_attempts_with_the_last_error(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        defaults:
          retry: {max_attempts: 2, initial_interval: 250ms}
        steps:
          - {id: flaky, tool: "sire:local/work"}
    """)
    tools.failures["flaky"] = 5
    clock = FakeClock()
    execution = await run(wf, clock=clock)
    assert execution.step_states["flaky"].status is StepStatus.FAILED
    assert execution.step_states["flaky"].attempts == 2
    assert clock.sleeps == [0.25]


async def test_a_waiting_retry_is_persisted_as_retrying_with_its_next_attempt(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: flaky, tool: "sire:local/work", retry: {max_attempts: 2, initial_interval: 2s}}
    """)
    tools.failures["flaky"] = 1
    seen: list[tuple[StepState, ExecutionStatus]] = []
    store = RecordingStore(seen)
    clock = FakeClock(start=100.0)
    await run(wf, store=store, clock=clock)
    retrying = [(s, e) for s, e in seen if s.status is StepStatus.RETRYING]
    assert len(retrying) == 1
    state, _ = retrying[0]
    assert state.next_attempt == 102.0
    assert state.error == "flaky broke"
    assert store.statuses == [
        ExecutionStatus.RUNNING,
        ExecutionStatus.RETRYING,
        ExecutionStatus.RUNNING,
        ExecutionStatus.COMPLETED,
    ]


class RecordingStore(MemoryStore):
    """A MemoryStore that also keeps the order of what was written."""

    def __init__(self, seen: list[tuple[StepState, ExecutionStatus]]) -> None:
        super().__init__()
        self.seen = seen
        self.statuses: list[ExecutionStatus] = []
        self.writes: list[tuple[str, StepStatus]] = []

    def stage_transition(self, lease: Lease, key: str, state: StepState) -> None:
        super().stage_transition(lease, key, state)
        self.seen.append((state, self._rows[lease.execution_id].execution.status))
        self.writes.append((key, state.status))

    async def record_transition(self, lease: Lease, key: str, state: StepState) -> None:
        await super().record_transition(lease, key, state)
        self.seen.append((state, self._rows[lease.execution_id].execution.status))
        self.writes.append((key, state.status))

    async def update_execution(self, lease: Lease, status: ExecutionStatus, **kw: Any) -> None:
        await super().update_execution(lease, status, **kw)
        self.statuses.append(status)


async def test_a_step_output_is_stored_before_any_dependent_starts(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: parent, tool: "sire:local/work"}
          - {id: child, tool: "sire:local/work", needs: [parent]}
    """)
    store = RecordingStore([])
    await run(wf, store=store)
    assert store.writes == [
        ("parent", StepStatus.RUNNING),
        ("parent", StepStatus.COMPLETED),
        ("child", StepStatus.RUNNING),
        ("child", StepStatus.COMPLETED),
    ]


async def test_cancelling_a_run_cancels_tool_calls_and_leaves_it_resumable(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: done, tool: "sire:local/work"}
          - {id: busy, tool: "sire:local/work", needs: [done]}
    """)
    tools.gate("busy")
    store = MemoryStore()
    task = asyncio.create_task(run(wf, store=store))
    async with asyncio.timeout(BOUND):
        await tools.started["busy"].wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tools.cancelled == ["busy"]
    (stored,) = [row.execution for row in store._rows.values()]
    assert stored.status is ExecutionStatus.RUNNING
    assert stored.step_states["done"].status is StepStatus.COMPLETED
    assert stored.step_states["busy"].status is StepStatus.PENDING
    assert stored.step_states["busy"].error == "interrupted"


async def test_resuming_runs_only_what_did_not_complete(tools: Recorder, run: Runner) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: first, tool: "sire:local/work", with: {value: 1}}
          - {id: second, tool: "sire:local/echo", with: {got: "{{ steps.first.output.value }}"}}
    """)
    store = MemoryStore()
    execution = Execution(new_execution_id(), wf.id, wf.digest)
    execution.step_states["first"] = StepState(
        StepStatus.COMPLETED, {"by": "first", "value": 41}, attempts=1
    )
    await store.create_execution(execution, wf.text)
    result = await run(wf, store=store, execution=execution)
    assert tools.events == []
    assert result.step_states["second"].output == {"got": 41}
    assert result.status is ExecutionStatus.COMPLETED


async def test_every_call_carries_its_context(tools: Recorder, run: Runner) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: only, tool: "sire:local/work", timeout: 30s}
    """)
    clock = FakeClock(start=50.0)
    execution = await run(wf, clock=clock)
    ctx = tools.contexts["only"]
    assert ctx.execution_id == execution.id
    assert ctx.step_id == "only"
    assert ctx.item_index is None
    assert ctx.attempt == 1
    assert ctx.deadline == 80.0
    assert ctx.idempotency_key == f"{execution.id}/only"


async def test_a_template_error_fails_the_step_naming_the_path(run: Runner) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: a, tool: "sire:local/echo", with: {x: 1}}
          - {id: b, tool: "sire:local/echo", with: {y: "{{ steps.a.output.missing }}"}}
    """)
    execution = await run(wf)
    state = execution.step_states["b"]
    assert state.status is StepStatus.FAILED
    assert state.error is not None
    assert state.error.startswith("steps.b.with.y: ")
    assert "missing" in state.error


async def test_a_secret_that_is_not_set_is_a_clear_step_error(run: Runner) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: a, tool: "sire:local/echo", with: {token: "{{ .secrets.api_token }}"}}
    """)
    execution = await run(wf)
    assert execution.step_states["a"].error == "steps.a.with.token: secret 'api_token' is not set"


async def test_outputs_render_from_step_outputs_or_default_to_the_leaves(run: Runner) -> None:
    declared = workflow("""
        id: t
        steps:
          - {id: a, tool: "sire:local/echo", with: {x: 2}}
        outputs:
          doubled: "{{ steps.a.output.x * 2 }}"
    """)
    assert (await run(declared)).outputs == {"doubled": 4}
    leaves = workflow("""
        id: t
        steps:
          - {id: a, tool: "sire:local/echo", with: {x: 1}}
          - {id: b, tool: "sire:local/echo", needs: [a], with: {y: 2}}
          - {id: c, tool: "sire:local/echo", with: {z: 3}}
    """)
    assert (await run(leaves)).outputs == {"b": {"y": 2}, "c": {"z": 3}}


async def test_a_long_chain_runs_in_order(tools: Recorder, run: Runner) -> None:
    steps = ['  - {id: s0, tool: "sire:local/work"}'] + [
        f'  - {{id: s{i}, tool: "sire:local/work", needs: [s{i - 1}]}}' for i in range(1, 300)
    ]
    wf = parse_workflow("id: chain\nsteps:\n" + "\n".join(steps) + "\n")
    execution = await run(wf)
    assert execution.status is ExecutionStatus.COMPLETED
    assert tools.events[::2] == [f"start s{i}" for i in range(300)]


async def test_retry_on_limits_which_failures_are_retried(tools: Recorder, run: Runner) -> None:
    wf = workflow("""
        id: t
        steps:
          - id: only_timeouts
            tool: sire:local/work
            retry: {max_attempts: 3, initial_interval: 1s, retry_on: [timeout]}
    """)
    tools.failures["only_timeouts"] = 2
    clock = FakeClock()
    execution = await run(wf, clock=clock)
    assert execution.step_states["only_timeouts"].status is StepStatus.FAILED
    assert execution.step_states["only_timeouts"].attempts == 1
    assert clock.sleeps == []


async def test_a_timeout_is_retried_like_any_failure(tools: Recorder, run: Runner) -> None:
    wf = workflow("""
        id: t
        steps:
          - id: slow
            tool: sire:local/work
            timeout: 10ms
            retry: {max_attempts: 2, initial_interval: 1s}
    """)
    tools.gate("slow")  # never opened: both attempts time out
    clock = FakeClock()
    execution = await run(wf, clock=clock)
    state = execution.step_states["slow"]
    assert (state.status, state.attempts, state.error) == (
        StepStatus.FAILED,
        2,
        "timed out after 10ms",
    )
    assert clock.sleeps == [1.0]


async def test_resuming_a_failed_execution_reruns_failed_and_skipped_steps_with_a_fresh_budget(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: good, tool: "sire:local/work"}
          - {id: flaky, tool: "sire:local/work", needs: [good], retry: {max_attempts: 2}}
          - {id: after, tool: "sire:local/work", needs: [flaky]}
    """)
    tools.failures["flaky"] = 2
    store = MemoryStore()
    first = await run(wf, store=store)
    assert first.status is ExecutionStatus.FAILED
    assert first.step_states["after"].status is StepStatus.SKIPPED
    tools.events.clear()
    second = await run(wf, store=store, execution=await store.get_execution(first.id))
    assert second.status is ExecutionStatus.COMPLETED
    assert tools.events == ["start flaky", "end flaky", "start after", "end after"]
    assert second.step_states["flaky"].attempts == 3
    assert tools.contexts["flaky"].idempotency_key == f"{first.id}/flaky"


async def test_a_driver_whose_lease_was_taken_over_stops_writing(
    tools: Recorder, run: Runner
) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: busy, tool: "sire:local/work"}
          - {id: after, tool: "sire:local/work", needs: [busy]}
    """)
    gate = tools.gate("busy")
    store = MemoryStore()
    execution = Execution(new_execution_id(), wf.id, wf.digest)
    await store.create_execution(execution, wf.text)
    lease = await store.acquire_lease(execution.id, "first", 30, 0)
    mux = DispatcherMux({"sire": InProcessDispatcher(tools.server)}, entry_points=False)
    engine = Engine(store, mux, clock=FakeClock(start=0))
    task = asyncio.create_task(engine.run(wf, execution, lease=lease))
    async with asyncio.timeout(BOUND):
        await tools.started["busy"].wait()
    await store.acquire_lease(execution.id, "second", 30, 1_000)  # the first lease expired
    gate.set()
    with pytest.raises(StaleLeaseError):
        async with asyncio.timeout(BOUND):
            await task
    stored = await store.get_execution(execution.id)
    busy = stored.step_states.get("busy")
    assert busy is None or busy.status is StepStatus.RUNNING  # its completion was refused
    assert "after" not in stored.step_states


async def test_cancel_requested_while_driving_cancels_running_calls_and_the_execution(
    tools: Recorder,
) -> None:
    wf = workflow("""
        id: t
        steps:
          - {id: busy, tool: "sire:local/work"}
          - {id: after, tool: "sire:local/work", needs: [busy]}
    """)
    tools.gate("busy")
    store = MemoryStore()
    execution = Execution(new_execution_id(), wf.id, wf.digest)
    await store.create_execution(execution, wf.text)
    mux = DispatcherMux({"sire": InProcessDispatcher(tools.server)}, entry_points=False)
    engine = Engine(store, mux, lease_ttl=0.03)  # heartbeat every 10 ms
    task = asyncio.create_task(engine.run(wf, execution))
    async with asyncio.timeout(BOUND):
        await tools.started["busy"].wait()
        await store.request_cancel(execution.id, time.time())
        result = await task
    assert result.status is ExecutionStatus.CANCELLED
    assert tools.cancelled == ["busy"]
    stored = await store.get_execution(execution.id)
    assert stored.status is ExecutionStatus.CANCELLED
    assert stored.step_states["busy"].status is StepStatus.CANCELLED
    assert stored.step_states["after"].status is StepStatus.CANCELLED
