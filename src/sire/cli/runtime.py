"""Wiring for commands: the dispatcher mux, edge checks of a workflow, and running it.

This is where concrete parts meet: config, built-in tools, stores and the engine.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sire.config import Config
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine, EngineObserver
from sire.errors import DefinitionError, ToolNotFoundError
from sire.model.execution import Execution, new_execution_id
from sire.model.workflow import Workflow
from sire.storage.base import Store


def tool_settings(config: Config) -> Any:
    from sire.tools import ToolSettings

    return ToolSettings(
        exec_allow=config.exec_allow,
        http_allow_hosts=config.http_allow_hosts,
        max_read_bytes=config.max_payload_bytes,
        max_output_bytes=config.max_payload_bytes,
    )


def build_dispatcher(config: Config) -> DispatcherMux:
    """The mux every command uses: built-in tools now, more schemes as they land."""

    def builtin(options: Mapping[str, Any]) -> Any:
        from sire.dispatch.inprocess import InProcessDispatcher
        from sire.tools import builtin_server

        return InProcessDispatcher(builtin_server(tool_settings(config)))

    mux = DispatcherMux()
    mux.register_factory("sire", builtin)
    return mux


def check_workflow(workflow: Workflow, mux: DispatcherMux, config: Config) -> None:
    """Check what only the edge knows: that every tool's scheme, server and name exist.

    Raises:
        DefinitionError: located at the offending step's `tool`.
    """
    servers = {**config.servers, **workflow.servers}
    for index, step in enumerate(workflow.steps):
        path = f"steps[{index}].tool"
        try:
            tool = step.tool
            if tool.scheme == "mcp" and not tool.is_url and tool.target not in servers:
                declared = ", ".join(sorted(servers)) or "none"
                raise ToolNotFoundError(
                    f"unknown server '{tool.target}' in '{tool}' (declared: {declared}; "
                    "name servers in the workflow's servers: or in $SIRE_HOME/config.yaml)"
                )
            mux.check(tool, servers)
        except ToolNotFoundError as exc:
            raise DefinitionError(
                str(exc), file=workflow.source, line=workflow.line(path), path=path
            ) from None


def new_execution(workflow: Workflow, inputs: dict[str, Any], workspace: Path) -> Execution:
    return Execution(
        id=new_execution_id(),
        workflow_id=workflow.id,
        workflow_hash=workflow.digest,
        inputs=inputs,
        workspace=str(workspace),
    )


async def execute(
    workflow: Workflow,
    execution: Execution,
    *,
    store: Store,
    dispatcher: DispatcherMux,
    observer: EngineObserver,
    env: Mapping[str, str],
) -> Execution:
    """Create and drive `execution`; SIGTERM interrupts it like Ctrl-C (resumable)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        await store.create_execution(execution)
        engine = Engine(store, dispatcher, observer=observer, env=env)
        return await engine.run(workflow, execution)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await dispatcher.aclose()
        await store.aclose()
