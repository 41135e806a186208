"""Wiring for commands: the dispatcher mux, edge checks of a workflow, and running it.

This is where concrete parts meet: config, built-in tools, stores and the engine.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sire.config import Config
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine, EngineObserver
from sire.engine.gate import StepGate
from sire.errors import DefinitionError, InvalidTransitionError, ToolNotFoundError, did_you_mean
from sire.model.execution import Execution, ExecutionStatus, new_execution_id
from sire.model.loader import load_workflow, parse_workflow
from sire.model.workflow import Workflow
from sire.storage import open_store
from sire.storage.base import Store

if TYPE_CHECKING:
    from sire.dispatch.dispatcher import Dispatcher


def tool_settings(config: Config) -> Any:
    from sire.tools import ToolSettings

    return ToolSettings(
        exec_allow=config.exec_allow,
        http_allow_hosts=config.http_allow_hosts,
        max_read_bytes=config.max_payload_bytes,
        max_output_bytes=config.max_payload_bytes,
    )


def build_dispatcher(config: Config) -> DispatcherMux:
    """The mux every command uses: built-in tools now, more schemes as they land.

    Raises:
        ConfigError: the OTEL_* variables ask for a trace exporter Sire cannot use (said
            here, before anything is stored).
    """
    from sire.observability import tracing

    tracing.tracer()

    def builtin(options: Mapping[str, Any]) -> Any:
        from sire.dispatch.inprocess import InProcessDispatcher
        from sire.tools import builtin_server

        return InProcessDispatcher(builtin_server(tool_settings(config)))

    def remote(options: Mapping[str, Any]) -> Any:
        from sire.dispatch.remote import RemoteDispatcher

        return RemoteDispatcher(config.servers)

    def jsonrpc(options: Mapping[str, Any]) -> Any:
        from sire.dispatch.jsonrpc import JsonRpcDispatcher

        return JsonRpcDispatcher(max_response_bytes=config.max_payload_bytes)

    mux = DispatcherMux()
    mux.register_factory("sire", builtin)
    mux.register_factory("mcp", remote)
    mux.register_factory("jsonrpc", jsonrpc)
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
                hint = did_you_mean(tool.target, servers)
                raise ToolNotFoundError(
                    f"unknown server '{tool.target}' in '{tool}' (declared: {declared}; "
                    "name servers in the workflow's servers: or in $SIRE_HOME/config.yaml)"
                    + (f"; {hint}" if hint else "")
                )
            mux.check(tool, servers)
        except ToolNotFoundError as exc:
            raise DefinitionError(
                str(exc), file=workflow.source, line=workflow.line(path), path=path
            ) from None


def new_engine(
    store: Store,
    dispatcher: DispatcherMux,
    config: Config,
    observer: EngineObserver | None = None,
    gate: StepGate | None = None,
    metrics: Any = None,
) -> Engine:
    """The engine every command drives executions with, configured from `config`.

    Each run gets the store's secrets, decrypted only when its workflow mentions them.
    Logs, traces (OTEL_* variables) and, given a `sire.observability.metrics.Metrics`,
    metrics are wired in here; none of them costs anything when off.
    """
    from sire.artifacts import configured
    from sire.observability import logging as logs
    from sire.observability import tracing
    from sire.secrets.store import StoreSecrets

    logs.configure_unless_cli()  # `sire run` has no `sire` callback: SIRE_LOG_* decide
    observer = logs.observing(observer)
    engine_store, engine_dispatcher = store, cast("Dispatcher", dispatcher)
    if metrics is not None:
        from sire.observability.metrics import MeteredDispatcher, MetricsObserver, timed
        from sire.observability.observers import fan_out

        engine_store = timed(store, metrics)
        engine_dispatcher = MeteredDispatcher(dispatcher, metrics)
        observer = fan_out(observer, MetricsObserver(metrics))
    return Engine(
        engine_store,
        engine_dispatcher,
        observer=observer,
        secrets=StoreSecrets(store, config.home),
        env=config.template_env(),
        lease_ttl=config.lease_ttl,
        gate=gate,
        max_payload_bytes=config.max_payload_bytes,
        tracer=tracing.tracer(),
        artifacts=configured(config),
    )


def quiet() -> EngineObserver:
    """An observer that shows nothing (for --json)."""
    from sire.engine.engine import NullObserver

    return NullObserver()


def resolve_checked_inputs(
    workflow: Workflow, given: Mapping[str, Any], config: Config
) -> dict[str, Any]:
    """The workflow's inputs from `given`, with defaults, under the payload size limit.

    Raises:
        InputError: an input is missing, of the wrong type, or they are too large.
    """
    from sire.engine.checks import payload_problem
    from sire.errors import InputError
    from sire.model.inputs import resolve_inputs

    values = resolve_inputs(workflow, dict(given))
    too_big = payload_problem(values, config.max_payload_bytes)
    if too_big is not None:
        raise InputError(f"{workflow.id}: the inputs are {too_big}")
    return values


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
    config: Config,
    db: str | None,
    dispatcher: DispatcherMux,
    observer: EngineObserver,
    detach: bool = False,
    gate: StepGate | None = None,
) -> Execution:
    """Store `execution` and drive it (unless `detach`); SIGTERM interrupts like Ctrl-C.

    With a `gate` (the debugger), each step waits for its answer; quitting there
    interrupts the run like Ctrl-C (`CancelledError`), leaving it resumable.
    """
    store = await open_store(db or config.db_url, home=config.home)
    try:
        await store.create_execution(execution, workflow.text)
        if detach:
            return execution
        engine = new_engine(store, dispatcher, config, observer, gate)
        return await _interruptible(engine.run(workflow, execution))
    finally:
        await dispatcher.aclose()
        await store.aclose()


async def resume(
    execution_id: str,
    *,
    config: Config,
    db: str | None,
    dispatcher: DispatcherMux,
    observer: EngineObserver,
    definition: Path | None = None,
    on_start: Callable[[Execution], None] | None = None,
    gate: StepGate | None = None,
) -> Execution:
    """Drive a stored execution on from where it stopped (DESIGN §4: `failed -> running`).

    Raises:
        NotFoundError: no such execution.
        InvalidTransitionError: it completed or was cancelled.
        LeaseHeldError: another driver holds it.
    """
    store = await open_store(db or config.db_url, home=config.home)
    try:
        execution = await store.get_execution(execution_id)
        if execution.status in (ExecutionStatus.COMPLETED, ExecutionStatus.CANCELLED):
            raise InvalidTransitionError(
                f"execution {execution_id} is {execution.status}; only unfinished or failed "
                "executions can be resumed"
            )
        engine = new_engine(store, dispatcher, config, observer, gate)
        lease = await store.acquire_lease(
            execution_id, engine.owner, engine.lease_ttl, engine.clock.time()
        )
        if definition is not None:
            workflow = load_workflow(definition, cache_dir=config.cache_dir)
            check_workflow(workflow, dispatcher, config)
            await store.set_definition(lease, workflow.digest, workflow.text)
            execution.workflow_hash = workflow.digest
        else:
            workflow = stored_workflow(
                execution.workflow_hash, await store.get_definition(execution.workflow_hash)
            )
        if on_start is not None:
            on_start(execution)
        return await _interruptible(engine.run(workflow, execution, lease=lease))
    finally:
        await dispatcher.aclose()
        await store.aclose()


def stored_workflow(workflow_hash: str, source: str) -> Workflow:
    """The workflow an execution was pinned to, from the source stored with it."""
    return parse_workflow(source, source=f"<definition {workflow_hash[:12]}>", digest=workflow_hash)


async def _interruptible(run: Awaitable[Execution]) -> Execution:
    """Await `run`, letting SIGTERM interrupt it the way Ctrl-C does."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is not None:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await run
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def remote_tools(server: str, config: Config) -> list[dict[str, Any]]:
    """The tools of the MCP server `server` (a configured name or a URL), as MCP JSON.

    Raises:
        InputError: `server` is neither a configured name nor an http(s) URL.
        ConfigError: the server could not be started or reached.
    """
    from sire.dispatch.remote import RemoteDispatcher
    from sire.errors import ConfigError, InputError, TransportError

    if "://" not in server and server not in config.servers:
        known = ", ".join(sorted(config.servers)) or "none"
        raise InputError(
            f"no MCP server named '{server}' in the user config (known: {known}); "
            "give a configured name or an http(s) URL"
        )

    async def fetch() -> list[dict[str, Any]]:
        remote = RemoteDispatcher(config.servers)
        try:
            return await remote.list_tools(server)
        finally:
            await remote.aclose()

    try:
        return asyncio.run(fetch())
    except ToolNotFoundError as exc:
        raise InputError(str(exc)) from None
    except TransportError as exc:
        raise ConfigError(str(exc)) from None
