"""OpenTelemetry traces: a span per execution, per step attempt and per tool call.

Above: the engine, which holds a `Tracer` or None. None (the default: no OTEL_*
exporter variable set) means the engine does no tracing work at all and nothing of
OpenTelemetry is imported. Below: the OpenTelemetry SDK, configured from the standard
variables (`OTEL_TRACES_EXPORTER`, `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`,
`OTEL_TRACES_SAMPLER`, `OTEL_BSP_*`, …), or a provider given to `install`.

A tool call's span is a client span; its W3C context goes into
`DispatchContext.trace_context`, which MCP calls carry in `_meta` (and as HTTP headers)
and `jsonrpc:` calls as headers, so a server's own spans join the trace. Each drive of
an execution stores its span's `traceparent` with its `running` event; a resumed
execution's span links to those of its earlier drives.

Sire's TracerProvider is its own, not the global one: the MCP SDK opens a client span
of its own per request with the global provider and would put *its* context in
`_meta`, so a server's span would hang under the SDK's span rather than Sire's.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sire.errors import ConfigError

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span

    from sire.dispatch.dispatcher import DispatchContext, Dispatcher
    from sire.engine.engine import _Run
    from sire.model.execution import Execution
    from sire.model.uri import ToolURI
    from sire.model.workflow import ServerSpec, Step
    from sire.storage.base import Store

_UNSET: Any = object()
_tracer: Tracer | None = _UNSET
#: the span of the step attempt the current task is making: the parent of its tool call
_attempt_span: ContextVar[Span | None] = ContextVar("sire_attempt_span", default=None)


def enabled_by(env: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables in `env` ask for traces to be exported."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = env.get("OTEL_TRACES_EXPORTER")
    if exporter is not None:
        return exporter.strip().lower() not in ("", "none")
    return bool(
        env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def tracer() -> Tracer | None:
    """The process's tracer: the installed one, else one from the OTEL_* variables, else None.

    Raises:
        ConfigError: the variables name an exporter Sire cannot use.
    """
    global _tracer
    if _tracer is _UNSET:
        _tracer = from_env(os.environ) if enabled_by(os.environ) else None
    return _tracer


def install(provider: TracerProvider | None) -> None:
    """Trace with `provider` from now on (None: no tracing), whatever the environment says."""
    global _tracer
    _tracer = None if provider is None else Tracer(provider)


def reset() -> None:
    """Forget the installed tracer: the next `tracer()` reads the environment again."""
    global _tracer
    _tracer = _UNSET


def from_env(env: Mapping[str, str]) -> Tracer:
    """A tracer exporting through a batch processor to the exporters OTEL_* names.

    Raises:
        ConfigError: an unknown exporter, or OTLP over gRPC (only http/protobuf ships).
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

    attributes = {} if env.get("OTEL_SERVICE_NAME") else {"service.name": "sire"}
    provider = TracerProvider(resource=Resource.create(attributes))
    names = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    for name in names:
        exporter: SpanExporter
        if name == "otlp":
            protocol = (
                env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf"
            )
            if protocol != "http/protobuf":
                raise ConfigError(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: Sire exports traces over "
                    "http/protobuf only; set it to http/protobuf (port 4318)"
                )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporter = ConsoleSpanExporter(out=sys.stderr)  # stdout is the command's output
        elif name == "none":
            continue
        else:
            raise ConfigError(
                f"OTEL_TRACES_EXPORTER={name}: unknown exporter; use otlp, console or none"
            )
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return Tracer(provider)


def traceparent(span: Span) -> str:
    """`span`'s context as a W3C `traceparent`."""
    context = span.get_span_context()
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{context.trace_flags:02x}"


def _carrier(span: Span) -> dict[str, str]:
    carrier = {"traceparent": traceparent(span)}
    state = span.get_span_context().trace_state
    if state:
        carrier["tracestate"] = state.to_header()
    return carrier


class Tracer:
    """Opens Sire's spans on one TracerProvider."""

    def __init__(self, provider: TracerProvider) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        from sire import __version__

        self.provider = provider
        self.otel = provider.get_tracer("sire", __version__)
        self._trace = trace
        self.kinds = SpanKind
        self.Status, self.StatusCode = Status, StatusCode

    async def drive(self, run: _Run) -> Execution:
        """`run.drive()` inside the execution's span, linked to its earlier drives' spans."""
        from opentelemetry.trace import Link

        execution = run.execution
        links = [Link(context) for context in await _earlier(run.store, execution)]
        span = self.otel.start_span(
            "sire.execution",
            attributes={
                "sire.workflow.id": execution.workflow_id,
                "sire.workflow.hash": execution.workflow_hash,
                "sire.execution.id": execution.id,
                "sire.resumed": bool(links),
            },
            links=links,
        )
        run.trace = RunTrace(self, span, self._trace.set_span_in_context(span))
        run.dispatcher = TracedDispatcher(run.dispatcher, self)
        try:
            result = await run.drive()
        except BaseException as exc:
            span.set_attribute("sire.execution.status", "interrupted")
            span.set_attribute("error.type", type(exc).__name__)
            span.end()
            raise
        span.set_attribute("sire.execution.status", str(result.status))
        if result.error:
            span.set_status(self.Status(self.StatusCode.ERROR, result.error))
            span.set_attribute("error.type", "execution_" + str(result.status))
        span.end()
        return result


class RunTrace:
    """The spans of one drive of one execution."""

    __slots__ = ("context", "data", "span", "tracer")

    def __init__(self, tracer: Tracer, span: Span, context: Any) -> None:
        self.tracer = tracer
        self.span = span
        self.context = context
        #: stored with the drive's `running` event, for a later resume to link to
        self.data = {"traceparent": traceparent(span)}

    def attempt(self, step: Step, key: str, attempt: int, index: int | None) -> AttemptSpan:
        """Open the span of attempt `attempt` of `key`; the current task's calls nest under it."""
        attributes: dict[str, Any] = {
            "sire.step.id": step.id,
            "sire.step.attempt": attempt,
            "sire.tool": str(step.tool),
        }
        if index is not None:
            attributes["sire.step.item"] = index
        span = self.tracer.otel.start_span(
            f"sire.step {key}", context=self.context, attributes=attributes
        )
        _attempt_span.set(span)
        return AttemptSpan(self.tracer, span)


class AttemptSpan:
    """One step attempt's span, ended with its outcome."""

    __slots__ = ("span", "tracer")

    def __init__(self, tracer: Tracer, span: Span) -> None:
        self.tracer = tracer
        self.span = span

    def completed(self) -> None:
        self.span.end()

    def failed(self, error: str, kind: str) -> None:
        span = self.span
        span.set_attribute("error.type", kind or "error")
        span.set_status(self.tracer.Status(self.tracer.StatusCode.ERROR, error))
        span.end()


class TracedDispatcher:
    """A Dispatcher opening a span per call, its context handed on in `ctx.trace_context`."""

    def __init__(self, inner: Dispatcher, tracer: Tracer) -> None:
        self.inner = inner
        self.tracer = tracer
        self._names: dict[ToolURI, tuple[str, Any, dict[str, Any]]] = {}

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None:
        self.inner.check(tool, servers)

    async def aclose(self) -> None:
        await self.inner.aclose()

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        from opentelemetry import context as otel_context

        tracer = self.tracer
        name, kind, attributes = self._describe(tool, ctx.servers)
        parent = _attempt_span.get()
        span = tracer.otel.start_span(
            name,
            context=None if parent is None else tracer._trace.set_span_in_context(parent),
            kind=kind,
            attributes=attributes,
        )
        ctx = ctx._replace(trace_context=_carrier(span))
        # Current while the call runs: anything the dispatcher traces itself nests under it.
        token = otel_context.attach(tracer._trace.set_span_in_context(span))
        try:
            return await self.inner.dispatch(ctx, tool, params)
        except BaseException as exc:
            deadline = ctx.deadline
            timed_out = deadline is not None and time.monotonic() >= deadline
            error_type = "timeout" if timed_out else type(exc).__name__
            span.set_attribute("error.type", error_type)
            span.set_status(tracer.Status(tracer.StatusCode.ERROR, str(exc) or error_type))
            raise
        finally:
            otel_context.detach(token)
            span.end()

    def _describe(
        self, tool: ToolURI, servers: Mapping[str, ServerSpec]
    ) -> tuple[str, Any, dict[str, Any]]:
        """The span name, kind and attributes of calls to `tool` (OTel semantic conventions)."""
        known = self._names.get(tool)
        if known is not None:
            return known
        kinds = self.tracer.kinds
        attributes: dict[str, Any] = {"sire.tool": str(tool)}
        url = tool.target if tool.is_url else None
        if tool.scheme == "mcp":
            name, kind = f"tools/call {tool.tool}", kinds.CLIENT
            attributes.update(
                {
                    "mcp.method.name": "tools/call",
                    "gen_ai.operation.name": "execute_tool",
                    "gen_ai.tool.name": tool.tool,
                    "rpc.system": "jsonrpc",
                }
            )
            if url is None:
                attributes["sire.mcp.server"] = tool.target
                spec = servers.get(tool.target)
                url = spec.url if spec is not None and spec.url else None
                attributes["network.transport"] = "tcp" if url else "pipe"
        elif tool.scheme == "jsonrpc":
            name, kind = tool.tool, kinds.CLIENT
            attributes.update({"rpc.system": "jsonrpc", "rpc.method": tool.tool})
        else:
            name, kind = str(tool), kinds.INTERNAL
            attributes["gen_ai.tool.name"] = tool.tool
        if url is not None:
            from urllib.parse import urlsplit

            parts = urlsplit(url)
            if parts.hostname:
                attributes["server.address"] = parts.hostname
                attributes["server.port"] = parts.port or (443 if parts.scheme == "https" else 80)
            attributes["network.transport"] = "tcp"
        described = self._names[tool] = (name, kind, attributes)
        return described


async def _earlier(store: Store, execution: Execution) -> list[Any]:
    """The span contexts of the execution's earlier drives (from their `running` events)."""
    if execution.status == "pending" and not execution.step_states:
        return []  # never driven: nothing to link to, and no read
    from opentelemetry.trace import SpanContext, TraceFlags

    contexts = []
    seen = set()
    for event in await store.list_events(execution.id):
        parent = event.data.get("traceparent") if event.kind == "execution" else None
        if not isinstance(parent, str) or parent in seen:
            continue
        seen.add(parent)
        try:
            _, trace_id, span_id, flags = parent.split("-")
            contexts.append(
                SpanContext(
                    int(trace_id, 16),
                    int(span_id, 16),
                    is_remote=True,
                    trace_flags=TraceFlags(int(flags, 16)),
                )
            )
        except ValueError:
            continue  # not a traceparent Sire wrote: nothing to link
    return contexts
