"""Prometheus metrics of `sire agent` and `sire server`: executions, steps, calls, queue, store.

Above: `sire.cli.runtime.new_engine`, which wraps the engine's dispatcher and store and
adds an observer when given a `Metrics`; `/metrics` of `sire server` and
`sire agent --metrics-port`, which expose its registry. Below: prometheus-client,
imported by this module, which `sire run` never imports.

Labels stay bounded: a tool (its URI, which has no arguments: `mcp:` tools as
`server#tool`), a scheme, a workflow id, a status or an error kind, never an execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from sire.engine.engine import NullObserver
from sire.errors import (
    SireError,
    ToolError,
    ToolInputError,
    ToolNotFoundError,
    TransportError,
)
from sire.model.execution import ExecutionStatus, StepStatus

if TYPE_CHECKING:
    from sire.dispatch.dispatcher import DispatchContext, Dispatcher
    from sire.model.execution import Execution, StepState
    from sire.model.uri import ToolURI
    from sire.model.workflow import ServerSpec
    from sire.storage.base import Lease, Store

#: step latencies: 1 ms to 5 min
_LATENCY = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
#: store writes: 0.1 ms to 1 s
_WRITES = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
_FINISHED = frozenset(
    {ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED}
)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """Sire's metrics, on a registry of their own (one per server app or agent process)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.executions_started = Counter(
            "sire_executions_started",
            "Executions an engine of this process started driving (each drive counts).",
            registry=registry,
        )
        self.executions_finished = Counter(
            "sire_executions_finished",
            "Executions that ended, by final status (completed, failed, cancelled).",
            ["status"],
            registry=registry,
        )
        self.step_duration = Histogram(
            "sire_step_duration_seconds",
            "Duration of one attempt's tool call, by tool scheme and tool.",
            ["scheme", "tool"],
            buckets=_LATENCY,
            registry=registry,
        )
        self.step_failures = Counter(
            "sire_step_failures",
            "Steps (and for_each items) that failed for good, by workflow.",
            ["workflow_id"],
            registry=registry,
        )
        self.step_retries = Counter(
            "sire_step_retries",
            "Attempts that failed and are retried, by workflow.",
            ["workflow_id"],
            registry=registry,
        )
        self.dispatch_errors = Counter(
            "sire_dispatch_errors",
            "Tool calls that failed, by scheme and kind "
            "(tool, transport, timeout, not_found, input, error, cancelled).",
            ["scheme", "kind"],
            registry=registry,
        )
        self.queue_due = Gauge(
            "sire_queue_due_executions",
            "Executions waiting for an agent (pending), as last counted.",
            registry=registry,
        )
        self.queue_running = Gauge(
            "sire_queue_running_executions",
            "Executions running or waiting to retry (any driver), as last counted.",
            registry=registry,
        )
        self.active_leases = Gauge(
            "sire_active_leases",
            "Execution leases this process holds (executions it drives now).",
            registry=registry,
        )
        self.store_write = Histogram(
            "sire_store_write_duration_seconds",
            "Duration of the engine's durable store writes, by operation.",
            ["operation"],
            buckets=_WRITES,
            registry=registry,
        )
        self._tools: dict[ToolURI, tuple[Any, str]] = {}

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)

    def timer(self, tool: ToolURI) -> tuple[Any, str]:
        """The histogram child of `tool` and its scheme (cached: labels resolve once)."""
        known = self._tools.get(tool)
        if known is None:
            label = f"{tool.target}{tool.sep}{tool.tool}"
            known = self._tools[tool] = (self.step_duration.labels(tool.scheme, label), tool.scheme)
        return known


class MeteredDispatcher:
    """A Dispatcher timing each call and counting its failures by kind."""

    def __init__(self, inner: Dispatcher, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None:
        self.inner.check(tool, servers)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        histogram, scheme = self.metrics.timer(tool)
        started = time.perf_counter()
        try:
            return await self.inner.dispatch(ctx, tool, params)
        except BaseException as exc:
            kind = _kind(exc, ctx)
            self.metrics.dispatch_errors.labels(scheme, kind).inc()
            raise
        finally:
            histogram.observe(time.perf_counter() - started)


def _kind(exc: BaseException, ctx: DispatchContext) -> str:
    if isinstance(exc, asyncio.CancelledError | TimeoutError):
        # The engine's step timeout arrives as a cancellation: the deadline tells them apart.
        if ctx.deadline is not None and time.monotonic() >= ctx.deadline:
            return "timeout"
        return "timeout" if isinstance(exc, TimeoutError) else "cancelled"
    if isinstance(exc, ToolInputError):
        return "input"
    if isinstance(exc, ToolNotFoundError):
        return "not_found"
    if isinstance(exc, TransportError):
        return "transport"
    if isinstance(exc, ToolError):
        return "tool"
    return "error"


class MetricsObserver(NullObserver):
    """An EngineObserver counting executions started and finished, step failures and retries."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._driving: set[str] = set()

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
        status = state.status
        if status is StepStatus.FAILED:
            self.metrics.step_failures.labels(execution.workflow_id).inc()
        elif status is StepStatus.RETRYING:
            self.metrics.step_retries.labels(execution.workflow_id).inc()

    def execution_changed(self, execution: Execution) -> None:
        status = execution.status
        if status in _FINISHED:
            self._driving.discard(execution.id)
            self.metrics.executions_finished.labels(str(status)).inc()
        elif status is ExecutionStatus.RUNNING and execution.id not in self._driving:
            # `running` also follows `retrying`: a drive is counted at its first `running`.
            if len(self._driving) > 100_000:  # interrupted drives never finish here
                self._driving.clear()
            self._driving.add(execution.id)
            self.metrics.executions_started.inc()


class TimedStore:
    """A Store whose durable writes of transitions and statuses are timed; all else passes."""

    def __init__(self, inner: Store, metrics: Metrics) -> None:
        self._inner = inner
        transition = metrics.store_write.labels("record_transition")
        update = metrics.store_write.labels("update_execution")
        self._observe_transition = transition.observe
        self._observe_update = update.observe

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def record_transition(self, lease: Lease, key: str, state: StepState) -> None:
        started = time.perf_counter()
        try:
            await self._inner.record_transition(lease, key, state)
        finally:
            self._observe_transition(time.perf_counter() - started)

    async def update_execution(self, lease: Lease, status: ExecutionStatus, **fields: Any) -> None:
        started = time.perf_counter()
        try:
            await self._inner.update_execution(lease, status, **fields)
        finally:
            self._observe_update(time.perf_counter() - started)


def timed(store: Store, metrics: Metrics) -> Store:
    """`store` with its durable engine writes timed into `metrics`."""
    return cast("Store", TimedStore(store, metrics))


async def watch_queue(
    metrics: Metrics,
    store: Store,
    active: Any,
    stop: asyncio.Event,
    *,
    interval: float = 5.0,
    limit: int = 10_000,
) -> None:
    """Count due and running executions every `interval` s until `stop` (at most `limit`).

    `active()` is how many executions this process drives (the leases it holds).
    """
    while not stop.is_set():
        metrics.active_leases.set(active())
        try:
            due = await store.list_executions(statuses=[ExecutionStatus.PENDING], limit=limit)
            running = await store.list_executions(
                statuses=[ExecutionStatus.RUNNING, ExecutionStatus.RETRYING], limit=limit
            )
        except SireError:
            pass  # the store is away for now: the gauges keep their last values
        else:
            metrics.queue_due.set(len(due))
            metrics.queue_running.set(len(running))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def serve(metrics: Metrics, host: str, port: int) -> tuple[int, Any]:
    """Serve `/metrics` on `host:port` from a daemon thread; return the port and a stop function.

    Raises:
        ConfigError: the address cannot be listened on.
    """
    from prometheus_client import start_http_server

    from sire.errors import ConfigError

    try:
        server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigError(
            f"--metrics-port {port}: cannot listen on {host}:{port} ({exc.strerror})"
        ) from None

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(5)

    return int(server.server_address[1]), stop
