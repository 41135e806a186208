"""The run loop: drives one Execution from its first step to its outputs.

A step starts the moment its last dependency finishes (no layers), bounded by the
workflow's `max_concurrency` on running tool calls. Every transition goes through
the Store before anything depends on it. A failed step lets independent branches
finish, its dependents end `skipped`, and the execution fails. Cancelling `run`
(Ctrl-C, SIGTERM) cancels running tool calls, puts their steps back to `pending`
and leaves the execution `running`: resumable, never `cancelled`. With a `StepGate`
(the debugger), each step waits for the gate's answer before it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Mapping
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn, Protocol

from sire.clock import Clock, SystemClock
from sire.dispatch.dispatcher import (
    DispatchContext,
    Dispatcher,
    MockedOutput,
    ProgressCallback,
    ignore_progress,
)
from sire.engine.checks import StepChecks, compile_checks, limit_checks
from sire.engine.gate import (
    SKIPPED_IN_DEBUGGER,
    Decision,
    GateStop,
    StepGate,
    Verdict,
    edited_key,
)
from sire.engine.retry import backoff_delay
from sire.engine.templating import Renderer, Secrets, compile_value, render
from sire.errors import (
    DispatchError,
    SireError,
    StaleLeaseError,
    TemplateError,
    TransportError,
)
from sire.model.durations import format_duration
from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus
from sire.model.workflow import ServerSpec, Step, Workflow
from sire.observability.logging import bind_attempt, bind_run
from sire.storage.base import Lease, LogEntry, Store

if TYPE_CHECKING:
    from sire.artifacts import Artifacts
    from sire.observability.tracing import RunTrace, Tracer
    from sire.secrets.vault import SecretSource, Vault

_RUNNING = StepStatus.RUNNING
_NOTHING: Mapping[str, Any] = MappingProxyType({})
_COMPLETED = StepStatus.COMPLETED
_FAILED = StepStatus.FAILED
_SKIPPED = StepStatus.SKIPPED
_ENDED = frozenset({StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED})


def default_owner() -> str:
    """Who drives: `host:pid`, unique among live processes sharing a store."""
    return f"{socket.gethostname()}:{os.getpid()}"


class EngineObserver(Protocol):
    """Sees every transition as it is persisted (the CLI's live progress)."""

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None: ...

    def step_progress(
        self,
        execution: Execution,
        key: str,
        progress: float,
        total: float | None,
        message: str | None,
    ) -> None: ...

    def execution_changed(self, execution: Execution) -> None: ...


class NullObserver:
    """Sees nothing."""

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
        return None

    def step_progress(
        self,
        execution: Execution,
        key: str,
        progress: float,
        total: float | None,
        message: str | None,
    ) -> None:
        return None

    def execution_changed(self, execution: Execution) -> None:
        return None


class _CompiledStep(NamedTuple):
    params: Renderer | None
    when: Renderer | None
    for_each: Renderer | None
    checks: StepChecks | None = None  # input/output schemas, payload limit


class Engine:
    """Runs executions of workflows through a Store and a Dispatcher.

    One engine may drive many executions at once; it holds no per-execution state.
    """

    def __init__(
        self,
        store: Store,
        dispatcher: Dispatcher,
        *,
        clock: Clock | None = None,
        observer: EngineObserver | None = None,
        secrets: Mapping[str, str] | SecretSource | None = None,
        env: Mapping[str, str] | None = None,
        owner: str | None = None,
        lease_ttl: float = 15.0,
        gate: StepGate | None = None,
        max_payload_bytes: int | None = None,
        tracer: Tracer | None = None,
        artifacts: Artifacts | None = None,
    ) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.clock = clock or SystemClock()
        self.observer: EngineObserver = observer or NullObserver()
        #: each run's secrets: for templates, sealed in stored outputs, redacted when shown
        self.secrets: SecretSource | None = None
        if isinstance(secrets, Mapping):
            if secrets:
                from sire.secrets.vault import FixedSecrets

                self.secrets = FixedSecrets(secrets)
        else:
            self.secrets = secrets
        self.env = dict(env or {})
        self.owner = owner or default_owner()
        self.lease_ttl = lease_ttl
        #: asked before each step and after each failure (the debugger); None: nothing asked
        self.gate = gate
        #: the largest step output, in bytes as JSON; None: no limit
        self.max_payload_bytes = max_payload_bytes
        self._compiled: dict[str, dict[str, _CompiledStep]] = {}
        #: OpenTelemetry spans per execution, attempt and call; None: no tracing work at all
        self.tracer = tracer
        #: where outputs too large for the store go; None: every output stays in the store
        self.artifacts = artifacts

    async def run(
        self, workflow: Workflow, execution: Execution, *, lease: Lease | None = None
    ) -> Execution:
        """Drive `execution` of `workflow` to its end and return it.

        Steps already `completed` in `execution.step_states` are not run again: their
        stored outputs feed their dependents; failed and skipped ones run again with a
        fresh retry budget (resuming a failed execution). The execution must be in
        the store. Without a `lease`, the engine acquires one; it renews it by
        heartbeat, stops if another driver takes it over, cancels the execution when
        `sire execution cancel` asks, and releases it at the end or on interruption.

        Raises:
            LeaseHeldError: another driver holds the execution.
            StaleLeaseError: the lease was taken over while running; nothing more was written.
            StoreError: the store failed; the execution is left as stored.
            ConfigError: the run's secrets cannot be decrypted; nothing was written.
        """
        vault, restored = None, {}
        if self.artifacts is not None and execution.step_states:
            try:
                from sire.artifacts import resolve_execution

                await resolve_execution(self.artifacts, execution)
            except BaseException:
                if lease is not None:  # the run never started: give the lease back
                    await self.store.release_lease(lease)
                raise
        if self.secrets is not None:
            try:
                vault = await self.secrets.vault(workflow, execution)
                if vault is not None and execution.step_states:
                    restored = _restore(vault, execution)
            except BaseException:
                if lease is not None:  # the run never started: give the lease back
                    await self.store.release_lease(lease)
                raise
        if lease is None:
            lease = await self.store.acquire_lease(
                execution.id, self.owner, self.lease_ttl, self.clock.time()
            )
        run = _Run(self, workflow, execution, lease, vault, restored)
        if vault is None:
            return await (run.drive() if self.tracer is None else self.tracer.drive(run))
        from sire.secrets.redact import activate, deactivate

        token = activate(vault.redactor)  # for edges that show raw values (the debugger)
        try:
            return await (run.drive() if self.tracer is None else self.tracer.drive(run))
        finally:
            deactivate(token)

    def compile(self, workflow: Workflow) -> dict[str, _CompiledStep]:
        """Compile the templates and schemas of every step once per workflow definition."""
        compiled = self._compiled.get(workflow.digest) if workflow.digest else None
        if compiled is None:
            limit = self.max_payload_bytes
            constant = _CompiledStep(None, None, None, limit_checks(limit))
            compiled = {
                step.id: _CompiledStep(
                    params=compile_value(step.params, f"steps.{step.id}.with"),
                    when=compile_value(step.when, f"steps.{step.id}.if"),
                    for_each=compile_value(step.for_each, f"steps.{step.id}.for_each"),
                    checks=compile_checks(step, limit),
                )
                if step.params
                or step.when
                or step.for_each
                or step.input_schema
                or step.output_schema
                else constant
                for step in workflow.steps
            }
            if workflow.digest:
                self._compiled[workflow.digest] = compiled
        return compiled


#: Step logs: a line longer than this is cut; an attempt keeps at most MAX_LOG_LINES lines
#: (a note says how many more were dropped); lines are written LOG_DELAY s after the first
#: one waiting (so `sire execution logs --follow` sees them while the step runs), and at
#: the latest when the attempt ends, before its outcome.
MAX_LOG_CHARS = 8192
MAX_LOG_LINES = 1000
LOG_DELAY = 0.2


class _StepLog:
    """The lines one step's tool logged that are not written yet."""

    def __init__(self, run: _Run, key: str) -> None:
        self.run = run
        self.key = key
        self.entries: list[LogEntry] = []
        self.kept = 0
        self.dropped = 0
        self.attempt = 0
        self.timer: asyncio.TimerHandle | None = None
        self.writing: asyncio.Task[None] | None = None

    def add(self, entry: LogEntry) -> None:
        self.attempt = entry.attempt
        if self.kept >= MAX_LOG_LINES:
            self.dropped += 1
            return
        self.kept += 1
        self.entries.append(entry)
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_later(LOG_DELAY, self.write_soon)

    def write_soon(self) -> None:
        self.timer = None
        # Chained on the previous write, so lines reach the store in the order logged;
        # a failure surfaces when the attempt ends and `close` awaits the chain.
        self.writing = asyncio.create_task(
            self.write(self.writing), name=f"sire-step-logs-{self.key}"
        )

    async def write(self, previous: asyncio.Task[None] | None) -> None:
        entries, self.entries = self.entries, []
        if previous is not None:
            await previous
        if entries:
            await self.run.store.add_logs(self.run.lease, self.key, entries)

    async def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.dropped:
            note = f"{self.dropped} more log lines dropped (at most {MAX_LOG_LINES} an attempt)"
            self.entries.append(
                LogEntry(self.run.clock.time(), "warning", note, "sire", self.attempt)
            )
            self.dropped = 0
        previous, self.writing = self.writing, None
        await self.write(previous)


def _restore(vault: Vault, execution: Execution) -> dict[str, Any]:
    """Unseal the outputs stored before a resume; keep them redacted in the execution.

    Raises:
        ConfigError: a sealed output does not decrypt with the vault's key.
    """
    states = execution.step_states
    restored = {
        key: vault.unseal(state.output, execution.id)
        for key, state in states.items()
        if state.output is not None
    }
    for key in restored:
        states[key] = states[key]._replace(output=vault.redact(states[key].output))
    return restored


class _Run:
    """The state of driving one execution; lives as long as `Engine.run`."""

    def __init__(
        self,
        engine: Engine,
        workflow: Workflow,
        execution: Execution,
        lease: Lease,
        vault: Vault | None = None,
        restored: dict[str, Any] | None = None,
    ) -> None:
        self.engine = engine
        self.lease = lease
        self.store = engine.store
        self.dispatcher = engine.dispatcher
        self.clock = engine.clock
        self.observer = engine.observer
        self.workflow = workflow
        self.execution = execution
        self.compiled = engine.compile(workflow)
        self.steps = {step.id: step for step in workflow.steps}
        self.dependents: dict[str, list[str]] = {step.id: [] for step in workflow.steps}
        for step in workflow.steps:
            for parent in step.depends:
                self.dependents[parent].append(step.id)
        self.waiting = {step.id: len(step.depends) for step in workflow.steps}
        self.status_of: dict[str, StepStatus] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.context: dict[str, Any] = {
            "inputs": execution.inputs,
            "steps": self.outputs,
            "secrets": Secrets(vault.values if vault is not None else ()),
            "env": engine.env,
            "execution": {
                "id": execution.id,
                "workflow_id": execution.workflow_id,
                "workspace": execution.workspace,
            },
        }
        # Bounding running calls costs a semaphore per call: skip it when it cannot bind.
        self.slots: asyncio.Semaphore | None = (
            None
            if len(workflow.steps) <= workflow.max_concurrency
            and not any(step.for_each for step in workflow.steps)
            else asyncio.Semaphore(workflow.max_concurrency)
        )
        self.servers = workflow.servers  # rendered when the run starts
        self.failed: list[str] = []
        self.running = 0
        self.retrying = 0
        self.group: asyncio.TaskGroup | None = None
        self.stopping: str | None = None  # "cancel" or "lost": why the heartbeat stopped us
        self.gate = engine.gate
        # One question to the gate at a time, and no step starts while one is open.
        self.gate_lock = asyncio.Lock() if self.gate is not None else None
        self.driver: asyncio.Task[Any] | None = None
        # With secrets: what is stored is sealed, what is kept and shown is redacted, and
        # outputs stored before a resume are read back unsealed (`restored`) for dependents.
        self.vault = vault
        self.restored = restored or {}
        self.trace: RunTrace | None = None  # set by the tracer, when tracing is on
        self.logs: dict[str, _StepLog] = {}  # lines tools logged, by step key, not yet written

    async def drive(self) -> Execution:
        driver = self.driver = asyncio.current_task()
        assert driver is not None
        bind_run(self.workflow.id, self.execution.id)  # log records of this run carry its ids
        heartbeat = asyncio.create_task(self.heartbeat(driver), name="sire-heartbeat")
        try:
            trace = self.trace
            await self.set_status(ExecutionStatus.RUNNING, data=trace.data if trace else None)
            try:
                self.servers = render_servers(self.workflow.servers, self.context)
            except TemplateError as exc:
                await self.finish_with(ExecutionStatus.FAILED, error=f"servers: {exc}")
                return self.execution
            try:
                async with asyncio.TaskGroup() as group:
                    self.group = group
                    for step in self.workflow.steps:
                        if self.waiting[step.id] == 0:
                            self.spawn(step)
            except BaseExceptionGroup as group_error:
                stale = group_error.subgroup(StaleLeaseError)
                if stale is not None:
                    raise stale.exceptions[0] from None
                raise
        except asyncio.CancelledError:
            if self.stopping == "cancel" and driver.uncancel() == 0:
                return await self.cancelled()
            if self.stopping == "lost":
                driver.uncancel()
                raise StaleLeaseError(
                    f"execution {self.execution.id}: lost its lease to another driver"
                ) from None
            # Interrupted, not cancelled: the execution stays `running` and resumable.
            await self.release()
            raise
        finally:
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        if self.failed:
            first = self.failed[0]
            error = self.execution.step_states[first].error
            await self.finish_with(ExecutionStatus.FAILED, error=f"step '{first}' failed: {error}")
            return self.execution
        try:
            outputs = self.render_outputs()
        except TemplateError as exc:
            await self.finish_with(ExecutionStatus.FAILED, error=f"outputs: {exc}")
            return self.execution
        await self.finish_with(ExecutionStatus.COMPLETED, outputs=outputs)
        return self.execution

    async def heartbeat(self, driver: asyncio.Task[Any]) -> None:
        """Renew the lease; stop the driver when it is lost or a cancel is asked for.

        Paced by the event loop's own clock: a heartbeat is about real time passing,
        while the injected Clock stamps what is stored (and drives retries in tests).
        """
        interval = self.engine.lease_ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                self.lease = await self.store.renew_lease(
                    self.lease, self.engine.lease_ttl, self.clock.time()
                )
            except StaleLeaseError:
                self.stopping = "lost"
                driver.cancel()
                return
            if self.lease.cancel_requested:
                self.stopping = "cancel"
                driver.cancel()
                return

    async def cancelled(self) -> Execution:
        """Mark every unfinished step `cancelled`, then the execution."""
        now = self.clock.time()
        for key, state in list(self.execution.step_states.items()):
            if not state.status.finished:
                await self.record(key, state._replace(status=StepStatus.CANCELLED, finished_at=now))
        for step in self.workflow.steps:
            if step.id not in self.execution.step_states:
                await self.record(step.id, StepState(StepStatus.CANCELLED, finished_at=now))
        await self.finish_with(ExecutionStatus.CANCELLED, error="cancelled")
        return self.execution

    async def finish_with(
        self,
        status: ExecutionStatus,
        *,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        # The last write gives the lease back in the same commit.
        await self.set_status(status, outputs=outputs, error=error, release=True)

    async def release(self) -> None:
        # Shielded: an interrupted driver must still give its lease back.
        with contextlib.suppress(StaleLeaseError):
            await asyncio.shield(self.store.release_lease(self.lease))

    def spawn(self, step: Step) -> None:
        assert self.group is not None
        self.group.create_task(self.step_task(step), name=f"sire-step-{step.id}")

    async def step_task(self, step: Step | None) -> None:
        # A step whose completion readies exactly one dependent runs it in this same
        # task: a chain costs one task in all, not one per step.
        while step is not None:
            status = await self.execute(step)
            runnable = await self.finish(step, status)
            step = runnable.pop() if runnable else None
            for other in runnable:
                self.spawn(other)

    async def execute(self, step: Step) -> StepStatus:
        stored = self.execution.step_states.get(step.id)
        if stored is not None and stored.status is _COMPLETED:
            output = self.restored.get(step.id, stored.output)
            self.outputs[step.id] = {"output": output, "status": _COMPLETED}
            return _COMPLETED
        compiled = self.compiled[step.id]
        try:
            if step.when is not None and not render(compiled.when, step.when, self.context):
                await self.record(step.id, StepState(_SKIPPED, error="'if' was false"))
                self.outputs[step.id] = {"output": None, "status": _SKIPPED}
                return _SKIPPED
            if step.for_each is not None:
                return await self.execute_for_each(step)
            params = self.params(step, self.context)
        except TemplateError as exc:
            return await self.fail(step.id, str(exc))
        if self.gate is not None:
            return await self.execute_gated(step, params)
        status, output = await self.attempts(step, step.id, None, params)
        self.outputs[step.id] = {"output": output, "status": status}
        return status

    async def execute_gated(self, step: Step, params: dict[str, Any]) -> StepStatus:
        """`execute` once its gate lets the step start, maybe with edited params."""
        decision = await self.ask_before(GateStop(self.execution, step, step.id, params))
        if decision.verdict is Verdict.SKIP:
            self.outputs[step.id] = {"output": None, "status": _SKIPPED}
            return await self.skip_in_debugger(step.id)
        edited = decision.params is not None
        if decision.params is not None:
            params = dict(decision.params)
        status, output = await self.attempts(step, step.id, None, params, edited=edited)
        self.outputs[step.id] = {"output": output, "status": status}
        return status

    async def execute_for_each(self, step: Step) -> StepStatus:
        compiled = self.compiled[step.id]
        items = render(compiled.for_each, step.for_each, self.context)
        if not isinstance(items, list | tuple):
            raise TemplateError(
                f"steps.{step.id}.for_each: expected a list, got {type(items).__name__}"
            )
        if self.gate is not None:  # asked once for the step; params are rendered per item
            stop = GateStop(self.execution, step, step.id, None, items)
            if (await self.ask_before(stop)).verdict is Verdict.SKIP:
                self.outputs[step.id] = {"output": None, "status": _SKIPPED}
                return await self.skip_in_debugger(step.id)
        started = self.clock.time()
        await self.record(step.id, StepState(_RUNNING, started_at=started))
        limit = asyncio.Semaphore(step.max_concurrency or self.workflow.max_concurrency)
        results: list[Any] = [None] * len(items)
        errors: dict[int, str] = {}

        async def one(index: int, item: Any) -> None:
            key = f"{step.id}/{index}"
            stored = self.execution.step_states.get(key)
            if stored is not None and stored.status is _COMPLETED:
                results[index] = self.restored.get(key, stored.output)
                return
            async with limit:
                try:
                    params = self.params(step, {**self.context, "item": item, "index": index})
                except TemplateError as exc:
                    await self.record(key, StepState(_FAILED, error=str(exc)))
                    errors[index] = str(exc)
                    return
                status, output = await self.attempts(step, key, index, params)
            if status is _COMPLETED:
                results[index] = output
            elif status is not _SKIPPED:  # an item skipped in the debugger leaves a null
                errors[index] = self.execution.step_states[key].error or status

        async with asyncio.TaskGroup() as group:
            for index, item in enumerate(items):
                group.create_task(one(index, item), name=f"sire-step-{step.id}-{index}")
        if errors:
            first = min(errors)
            error = f"{len(errors)} of {len(items)} items failed; item {first}: {errors[first]}"
            self.outputs[step.id] = {"output": None, "status": _FAILED}
            return await self.fail(step.id, error, started_at=started)
        output = {"items": results}
        too_big = compiled.checks.size(step, output) if compiled.checks is not None else None
        if too_big is not None:  # every item fits, all of them together do not
            self.outputs[step.id] = {"output": None, "status": _FAILED}
            return await self.fail(step.id, too_big, started_at=started)
        await self.record(
            step.id,
            StepState(_COMPLETED, output, started_at=started, finished_at=self.clock.time()),
        )
        self.outputs[step.id] = {"output": output, "status": _COMPLETED}
        return _COMPLETED

    def params(self, step: Step, context: Mapping[str, Any]) -> dict[str, Any]:
        if step.params is not None:
            rendered: dict[str, Any] = render(self.compiled[step.id].params, step.params, context)
            return rendered  # dispatchers copy before they change anything
        # No `with:`: the workflow inputs overlaid by the parents' outputs, in order.
        params = dict(self.execution.inputs)
        for parent in step.depends:
            output = self.outputs[parent]["output"]
            if isinstance(output, dict):
                params.update(output)
        return params

    async def attempts(
        self,
        step: Step,
        key: str,
        index: int | None,
        params: dict[str, Any],
        *,
        edited: bool = False,
    ) -> tuple[StepStatus, Any]:
        """Call the step's tool until it succeeds or its retry policy gives up.

        With a gate, a step that failed for good is offered to it: retried (maybe with
        edited `params`, under a new idempotency key), skipped, or left failed.
        """
        policy = step.retry
        clock = self.clock
        checks = self.compiled[step.id].checks
        started = clock.time()
        stored = self.execution.step_states.get(key)
        attempt = stored.attempts + 1 if stored is not None else 1
        # A step that failed (or was skipped) before a resume gets a fresh retry budget.
        spent = stored.attempts if stored is not None and stored.status in _ENDED else 0
        idempotency_key = f"{self.execution.id}/{key}"
        if edited:
            idempotency_key = edited_key(idempotency_key, params)
        # An attempt interrupted mid-call may have saved where it was (a remote task id).
        resume = stored.checkpoint if stored is not None and not stored.status.finished else None
        while True:
            # `running` need not be durable before the call: lost, the step just reruns.
            running = StepState(_RUNNING, attempts=attempt, started_at=started, checkpoint=resume)
            await self.record(key, running, durable=False)
            ctx = DispatchContext(
                execution_id=self.execution.id,
                step_id=step.id,
                item_index=index,
                attempt=attempt,
                deadline=None if step.timeout is None else clock.monotonic() + step.timeout,
                idempotency_key=idempotency_key,
                workspace=self.execution.workspace,
                servers=self.servers,
                report_progress=self.progress_reporter(key),
                checkpoint=partial(self.checkpoint, key, attempt),
                resume=resume or _NOTHING,
                log=partial(self.log_line, key, attempt),
            )
            resume = None
            kind = "error"
            mocked = False
            bind_attempt(ctx)
            span = None if self.trace is None else self.trace.attempt(step, key, attempt, index)
            try:
                if checks is not None:
                    checks.params(step, params)
                if self.slots is None:
                    output = await self.call(step, ctx, params)
                else:
                    async with self.slots:
                        output = await self.call(step, ctx, params)
                if checks is not None:
                    checks.output(step, output)
            except TimeoutError as exc:
                error, kind = f"timed out after {format_duration(step.timeout or 0)}", "timeout"
                mocked = getattr(exc, "mocked", False)
            except TransportError as exc:
                error, kind = str(exc), "transport" if exc.retryable else ""
                mocked = getattr(exc, "mocked", False)
            except DispatchError as exc:
                error, kind = str(exc), "error" if exc.retryable else ""
                mocked = getattr(exc, "mocked", False)
            except SireError as exc:
                error, kind = str(exc), ""
            except asyncio.CancelledError:
                if span is not None:
                    span.failed("cancelled", "cancelled")
                if self.logs and self.stopping != "lost":
                    await self.write_logs(key)
                if self.stopping == "cancel":
                    state = StepState(
                        StepStatus.CANCELLED, attempts=attempt, finished_at=clock.time()
                    )
                    await self.record(key, state)
                elif self.stopping is None:
                    saved = self.execution.step_states[key].checkpoint
                    interrupted = StepState(attempts=attempt - 1, error="interrupted")
                    await self.record(key, interrupted._replace(checkpoint=saved))
                raise
            except Exception as exc:  # a dispatcher broke its contract: fail the step, not Sire
                error, kind = f"dispatcher error: {type(exc).__name__}: {exc}", ""
            else:
                if span is not None:
                    span.completed()
                if self.logs:
                    await self.write_logs(key)
                await self.record(
                    key,
                    StepState(
                        _COMPLETED,
                        output,
                        attempts=attempt,
                        started_at=started,
                        finished_at=clock.time(),
                        mocked=output.__class__ is MockedOutput,
                    ),
                )
                return _COMPLETED, output
            if span is not None:
                span.failed(error, kind)
            if self.logs:
                await self.write_logs(key)
            if kind not in policy.retry_on or attempt - spent >= policy.max_attempts:
                status = await self.fail(
                    key, error, attempts=attempt, started_at=started, mocked=mocked
                )
                if self.gate is None:
                    return status, None
                stop = GateStop(self.execution, step, key, params, None, error, attempt)
                decision = await self.ask_after(stop)
                if decision is None:
                    return status, None
                if decision.verdict is Verdict.SKIP:
                    return await self.skip_in_debugger(key), None
                spent, started = attempt, clock.time()  # retried: a fresh retry budget
                if decision.params is not None:
                    params = dict(decision.params)
                    idempotency_key = edited_key(f"{self.execution.id}/{key}", params)
                attempt += 1
                continue
            delay = backoff_delay(policy, attempt)
            await self.record(
                key,
                StepState(
                    StepStatus.RETRYING,
                    error=error,
                    attempts=attempt,
                    next_attempt=clock.time() + delay,
                    started_at=started,
                    mocked=mocked,
                ),
            )
            await clock.sleep(delay)
            attempt += 1

    async def ask_before(self, stop: GateStop) -> Decision:
        """Ask the gate whether `stop` may start; no other step starts until it answers."""
        assert self.gate is not None
        assert self.gate_lock is not None
        async with self.gate_lock:
            decision = await self.gate.before_step(stop)
        if decision.verdict is Verdict.QUIT:
            self.quit()
        return decision

    async def ask_after(self, stop: GateStop) -> Decision | None:
        """Ask the gate what to do with a step that failed for good."""
        assert self.gate is not None
        assert self.gate_lock is not None
        async with self.gate_lock:
            decision = await self.gate.after_failure(stop)
        if decision is not None and decision.verdict is Verdict.QUIT:
            self.quit()
        return decision

    def quit(self) -> NoReturn:
        """Stop the run as an interrupt does: running calls cancelled, resumable."""
        assert self.driver is not None
        self.driver.cancel()
        raise asyncio.CancelledError

    async def skip_in_debugger(self, key: str) -> StepStatus:
        now = self.clock.time()
        await self.record(key, StepState(_SKIPPED, error=SKIPPED_IN_DEBUGGER, finished_at=now))
        return _SKIPPED

    def log_line(
        self, key: str, attempt: int, level: str, message: str, logger: str | None
    ) -> None:
        """Keep a line the tool of attempt `attempt` of `key` logged (ctx.log), redacted."""
        state = self.execution.step_states.get(key)
        if state is None or state.status is not _RUNNING or state.attempts != attempt:
            return  # too late: the attempt's logs are written
        if self.vault is not None and self.vault.redactor:
            mask = self.vault.redactor.text
            message, logger = mask(message), logger and mask(logger)
        buffer = self.logs.get(key)
        if buffer is None:
            buffer = self.logs[key] = _StepLog(self, key)
        buffer.add(LogEntry(self.clock.time(), level, message[:MAX_LOG_CHARS], logger, attempt))

    async def write_logs(self, key: str) -> None:
        """Write what `key`'s attempt logged and has not been written yet (it is ending)."""
        buffer = self.logs.pop(key, None)
        if buffer is not None:
            await buffer.close()

    async def checkpoint(self, key: str, attempt: int, data: Mapping[str, Any]) -> None:
        """Save `data` durably with attempt `attempt` of `key`, while it still runs."""
        current = self.execution.step_states.get(key)
        if current is not None and current.status is _RUNNING and current.attempts == attempt:
            await self.record(key, current._replace(checkpoint=dict(data)))

    async def call(
        self, step: Step, ctx: DispatchContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        if step.timeout is None:
            return await self.dispatcher.dispatch(ctx, step.tool, params)
        async with asyncio.timeout(step.timeout):
            return await self.dispatcher.dispatch(ctx, step.tool, params)

    async def fail(
        self,
        key: str,
        error: str,
        *,
        attempts: int = 0,
        started_at: float | None = None,
        mocked: bool = False,
    ) -> StepStatus:
        stored = self.execution.step_states.get(key)
        await self.record(
            key,
            StepState(
                _FAILED,
                error=error,
                attempts=attempts or (stored.attempts if stored else 0),
                started_at=started_at,
                finished_at=self.clock.time(),
                mocked=mocked,
            ),
        )
        return _FAILED

    async def finish(self, step: Step, status: StepStatus) -> list[Step]:
        """Count `step` as done; skip dependents that cannot run; return those that can."""
        runnable: list[Step] = []
        done = [(step, status)]
        while done:
            finished, finished_status = done.pop()
            self.status_of[finished.id] = finished_status
            if finished_status is _FAILED:
                self.failed.append(finished.id)
            for child_id in self.dependents[finished.id]:
                self.waiting[child_id] -= 1
                if self.waiting[child_id]:
                    continue
                child = self.steps[child_id]
                reason = self.skip_reason(child)
                if reason is None:
                    runnable.append(child)
                    continue
                await self.record(child_id, StepState(_SKIPPED, error=reason))
                self.outputs[child_id] = {"output": None, "status": _SKIPPED}
                done.append((child, _SKIPPED))
        return runnable

    def skip_reason(self, step: Step) -> str | None:
        status_of = self.status_of
        if not step.needs_any and all(status_of[p] is _COMPLETED for p in step.depends):
            return None
        parents = [(p, status_of[p]) for p in step.depends]
        if step.needs_any:
            if any(status is _COMPLETED for _, status in parents):
                return None
            return "no parent completed"
        for parent, status in parents:
            if status is not _COMPLETED:
                return f"parent '{parent}' {status}"
        return None

    def progress_reporter(self, key: str) -> ProgressCallback:
        observer, execution = self.observer, self.execution
        if type(observer).step_progress is NullObserver.step_progress:
            return ignore_progress  # nobody shows it: the dispatcher need not ask for it

        def report(progress: float, total: float | None, message: str | None) -> None:
            observer.step_progress(execution, key, progress, total, message)

        vault = self.vault
        if vault is None or not vault.redactor:
            return report
        mask = vault.redactor.text

        def report_redacted(progress: float, total: float | None, message: str | None) -> None:
            observer.step_progress(execution, key, progress, total, message and mask(message))

        return report_redacted

    async def record(self, key: str, state: StepState, *, durable: bool = True) -> None:
        states = self.execution.step_states
        previous = states.get(key)
        stored = state
        if self.vault is not None and (state.output is not None or state.error):
            stored, state = self.guarded(state)
        artifacts = self.engine.artifacts
        if artifacts is not None and stored.output is not None:
            data = artifacts.encode_large(stored.output)
            if data is not None:
                ref = await artifacts.put(self.execution.id, data)
                stored = stored._replace(output=ref)
        states[key] = state
        if durable:
            await self.store.record_transition(self.lease, key, stored)
        else:
            self.store.stage_transition(self.lease, key, stored)
        self.observer.step_changed(self.execution, key, state)
        old = previous.status if previous is not None else None
        new = state.status
        if old is new or not (self.retrying or new is StepStatus.RETRYING):
            if old is not new:
                self.running += (new is _RUNNING) - (old is _RUNNING)
            return
        # Keep the execution `retrying` exactly while steps wait to retry and none runs.
        self.running += (new is _RUNNING) - (old is _RUNNING)
        self.retrying += (new is StepStatus.RETRYING) - (old is StepStatus.RETRYING)
        status = self.execution.status
        if status is ExecutionStatus.RUNNING and self.retrying and not self.running:
            await self.set_status(ExecutionStatus.RETRYING)
        elif status is ExecutionStatus.RETRYING and (self.running or not self.retrying):
            await self.set_status(ExecutionStatus.RUNNING)

    def guarded(self, state: StepState) -> tuple[StepState, StepState]:
        """`state` as stored (secrets in its output sealed) and as kept and shown (masked)."""
        vault = self.vault
        assert vault is not None
        if state.error:
            state = state._replace(error=vault.redactor.text(state.error))
        if state.output is None:
            return state, state
        sealed = vault.seal(state.output, self.execution.id)
        if sealed is state.output:
            return state, state
        return state._replace(output=sealed), state._replace(output=vault.redact(sealed))

    async def set_status(
        self,
        status: ExecutionStatus,
        *,
        outputs: dict[str, Any] | None = None,
        error: str | None = None,
        data: Mapping[str, Any] | None = None,
        release: bool = False,
    ) -> None:
        execution = self.execution
        stored = outputs
        vault = self.vault
        if vault is not None:
            error = error and vault.redactor.text(error)
            if outputs is not None:
                stored = vault.seal(outputs, execution.id)
                outputs = vault.redact(stored)
        artifacts = self.engine.artifacts
        if artifacts is not None and stored is not None:
            stored = await artifacts.offload(execution.id, stored)
        execution.status = status
        execution.outputs = outputs if outputs is not None else execution.outputs
        execution.error = error
        execution.updated_at = self.clock.time()
        await self.store.update_execution(
            self.lease, status, outputs=stored, error=error, data=data, release=release
        )
        self.observer.execution_changed(execution)

    def render_outputs(self) -> dict[str, Any]:
        outputs = self.workflow.outputs
        if outputs is None:
            # No `outputs:`: the outputs of the steps nothing depends on.
            return {
                step_id: self.outputs[step_id]["output"]
                for step_id, children in self.dependents.items()
                if not children and self.status_of.get(step_id) is _COMPLETED
            }
        rendered = render(compile_value(outputs, "outputs"), outputs, self.context)
        return dict(rendered)


def render_servers(
    servers: Mapping[str, ServerSpec], context: Mapping[str, Any]
) -> Mapping[str, ServerSpec]:
    """The workflow's named servers with their templated fields rendered.

    `headers`, `env`, `command` and `cwd` may be templates (the `url` may not: it names
    the server).

    Rendered once per run, with the run's inputs, secrets and env (no step outputs):
    credentials stay out of the YAML, and a session is keyed by the rendered values.

    Raises:
        TemplateError: a template names an unset secret or breaks the sandbox.
    """
    rendered = dict(servers)
    for name, spec in servers.items():
        fields: dict[str, Any] = {}
        for field in ("headers", "env"):
            value = dict(getattr(spec, field))
            renderer = compile_value(value, f"servers.{name}.{field}")
            if renderer is not None:
                fields[field] = {k: str(v) for k, v in renderer(context).items()}
        command = compile_value(list(spec.command), f"servers.{name}.command")
        if command is not None:
            fields["command"] = tuple(str(part) for part in command(context))
        cwd = compile_value(spec.cwd, f"servers.{name}.cwd")
        if cwd is not None:
            fields["cwd"] = str(cwd(context))
        if fields:
            rendered[name] = spec._replace(**fields)
    return rendered
