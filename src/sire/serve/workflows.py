"""Workflows as MCP tools: the schema a workflow is served with, and one execution per call.

Above: the Catalog and the protocol layer. Below: the engine and the store, through the
same wiring as `sire run` (`sire.cli.runtime`). A call validates its arguments as the
workflow's inputs, creates a real, durable execution (it shows in `sire execution list`),
drives it in this process and answers with the workflow's outputs. Every finished step
is reported as progress. When the caller cancels the call (or goes away), the running
steps are cancelled and the execution ends `cancelled`; when the server itself stops,
the execution is interrupted like `sire run` on Ctrl-C: left resumable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sire.dispatch.dispatcher import ProgressCallback
from sire.engine.engine import NullObserver
from sire.errors import SireError, ToolError
from sire.model.execution import Execution, ExecutionStatus, StepState
from sire.model.workflow import Workflow
from sire.serve.catalog import Call, Outcome

if TYPE_CHECKING:
    from sire.config import Config
    from sire.dispatch.mux import DispatcherMux
    from sire.storage.base import Store

log = logging.getLogger(__name__)

#: The `_meta` key of a workflow tool's result that names its execution.
EXECUTION_ID_KEY = "sire/execution-id"


def workflow_input_schema(workflow: Workflow) -> dict[str, Any]:
    """The `inputSchema` of a workflow: one property per input, required unless defaulted."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {name: _plain(spec) for name, spec in workflow.inputs.items()},
        "additionalProperties": False,
    }
    required = sorted(name for name, spec in workflow.inputs.items() if "default" not in spec)
    if required:
        schema["required"] = required
    return schema


def workflow_output_schema(workflow: Workflow) -> dict[str, Any]:
    """The `outputSchema` of a workflow: its `outputs:` names, all present.

    Without `outputs:` a completed execution's outputs are those of its last steps
    (the ones nothing depends on) that completed, so none is required.
    """
    if workflow.outputs is not None:
        names = list(workflow.outputs)
        return {"type": "object", "properties": {name: {} for name in names}, "required": names}
    needed = {parent for step in workflow.steps for parent in step.depends}
    leaves = [step.id for step in workflow.steps if step.id not in needed]
    return {"type": "object", "properties": {name: {} for name in leaves}}


def _plain(value: Any) -> Any:
    """`value` as plain JSON data (dicts and lists), ready to serialize."""
    result: Any = json.loads(json.dumps(value))
    return result


class WorkflowTool:
    """A workflow served as the tool named by its id."""

    def __init__(self, workflow: Workflow, runner: WorkflowRunner) -> None:
        self.workflow = workflow
        self.runner = runner
        self._input_schema = workflow_input_schema(workflow)
        self._output_schema = workflow_output_schema(workflow)

    @property
    def name(self) -> str:
        return self.workflow.id

    @property
    def input_schema(self) -> Mapping[str, Any]:
        return self._input_schema

    def describe(self) -> dict[str, Any]:
        workflow = self.workflow
        steps = len(workflow.steps)
        about = workflow.description.strip() or f"Runs the Sire workflow '{workflow.id}'."
        return {
            "name": workflow.id,
            "description": f"{about} ({steps} step{'s' if steps != 1 else ''}; each call is "
            "a durable Sire execution.)",
            "inputSchema": self._input_schema,
            "outputSchema": self._output_schema,
        }

    async def call(self, arguments: Mapping[str, Any], call: Call) -> Outcome:
        """Run the workflow with `arguments` as its inputs; its outputs are the output.

        Raises:
            InputError: the arguments are not the workflow's inputs.
            ToolError: the execution failed or was cancelled (the message names the
                failed step, its error and the execution).
            StoreError: the store refused the execution.
        """
        return await self.runner.run(self.workflow, arguments, call.report_progress)


class WorkflowRunner:
    """Drives the executions of served workflows through one store and one dispatcher.

    `open` before the first call and `aclose` at the end (which interrupts executions
    still running, leaving them resumable).
    """

    def __init__(
        self, config: Config, dispatcher: DispatcherMux, *, workspace: Path, db: str | None = None
    ) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.workspace = workspace
        self.db = db
        self.store: Store | None = None
        self.closing = False
        self._running: set[asyncio.Task[Execution]] = set()
        self._abandoning: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        """Open the store.

        Raises:
            StoreError: it cannot be opened.
            ConfigError: the store URL is wrong.
        """
        from sire.storage import open_store

        if self.store is None:
            self.store = await open_store(self.db or self.config.db_url, home=self.config.home)

    async def run(
        self, workflow: Workflow, arguments: Mapping[str, Any], report: ProgressCallback
    ) -> Outcome:
        """Create an execution of `workflow` with `arguments` as inputs and drive it to its end.

        Raises:
            InputError: the arguments are not the workflow's inputs.
            ToolError: the execution failed or was cancelled, or the server stopped.
            StoreError: the store failed.
        """
        from sire.cli.runtime import new_engine, new_execution, resolve_checked_inputs

        await self.open()
        assert self.store is not None
        inputs = resolve_checked_inputs(workflow, arguments, self.config)
        execution = new_execution(workflow, inputs, self.workspace)
        await self.store.create_execution(execution, workflow.text)
        total = len(workflow.steps)
        report(0, total, f"execution {execution.id} of workflow '{workflow.id}' started")
        engine = new_engine(self.store, self.dispatcher, self.config, _StepProgress(total, report))
        # The execution runs in a task of its own: the caller's cancellation must reach it
        # as one clean interruption, not as the SDK's repeated cancellation of the handler.
        task = asyncio.create_task(
            engine.run(workflow, execution), name=f"sire-serve-execution-{execution.id}"
        )
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        try:
            finished = await asyncio.shield(task)
        except asyncio.CancelledError:
            caller = asyncio.current_task()
            if task.cancelled() and self.closing and not (caller and caller.cancelling()):
                raise ToolError(
                    f"the server stopped: execution {execution.id} of workflow "
                    f"'{workflow.id}' was interrupted and is resumable "
                    f"(sire execution resume {execution.id})"
                ) from None
            if not task.done():
                self._abandon(task, execution.id)
            raise
        return _outcome(finished)

    def _abandon(self, task: asyncio.Task[Execution], execution_id: str) -> None:
        """Cancel an execution whose caller cancelled the call or went away."""

        async def abandon() -> None:
            task.cancel()  # running steps are cancelled; the lease is given back
            await asyncio.gather(task, return_exceptions=True)
            if self.closing or self.store is None:
                return  # the server is stopping: leave the execution resumable
            try:
                await self.store.request_cancel(execution_id, time.time())
            except SireError as exc:  # it finished meanwhile, or the store is gone
                log.info("sire.serve.cancel_skipped execution_id=%s reason=%s", execution_id, exc)
            else:
                log.info("sire.serve.execution_cancelled execution_id=%s", execution_id)

        abandoning = asyncio.create_task(abandon(), name=f"sire-serve-cancel-{execution_id}")
        self._abandoning.add(abandoning)
        abandoning.add_done_callback(self._abandoning.discard)

    def interrupt(self) -> None:
        """Stop driving: running executions are interrupted, left resumable, and their
        calls answer so (an error naming the execution), letting connections close."""
        self.closing = True
        for task in list(self._running):
            task.cancel()

    async def aclose(self) -> None:
        """Interrupt the executions still running (resumable), then close the store."""
        self.interrupt()
        pending = {*self._running, *self._abandoning}
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        try:
            await self.dispatcher.aclose()
        finally:
            store, self.store = self.store, None
            if store is not None:
                await store.aclose()


def _outcome(execution: Execution) -> Outcome:
    """The call's answer for a driven execution.

    Raises:
        ToolError: it failed or was cancelled.
    """
    meta = {EXECUTION_ID_KEY: execution.id}
    if execution.status is ExecutionStatus.COMPLETED:
        return Outcome(dict(execution.outputs or {}), meta)
    if execution.status is ExecutionStatus.CANCELLED:
        raise ToolError(
            f"execution {execution.id} of workflow '{execution.workflow_id}' was cancelled"
        )
    error = execution.error or str(execution.status)
    raise ToolError(f"{error} (execution {execution.id} of workflow '{execution.workflow_id}')")


class _StepProgress(NullObserver):
    """An engine observer reporting each finished step as MCP progress: `k` of `n` steps.

    A tool's own progress is not forwarded (it would break the steps' count, which must
    grow): `step_progress` stays NullObserver's, so the engine does not even ask for it.
    """

    def __init__(self, total: int, report: ProgressCallback) -> None:
        self._total = total
        self._report = report
        self._finished: set[str] = set()

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
        if "/" in key or not state.status.finished or key in self._finished:
            return  # items of a for_each step count once, with their step
        self._finished.add(key)
        self._report(len(self._finished), self._total, f"step '{key}' {state.status}")
