"""An MCP server over Streamable HTTP that traces with the OpenTelemetry SDK, to a file.

    python traced_server.py PORT SPANS_FILE

Each finished span is appended to SPANS_FILE as one JSON line (name, kind, trace and
span ids, parent id, attributes). The SDK's server middleware opens a span per request
from `_meta.traceparent`; the `add` tool opens one of its own inside it and reports the
`traceparent` HTTP header it was sent.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult


class JsonLines(SpanExporter):
    def __init__(self, path: str) -> None:
        self.path = path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with open(self.path, "a", encoding="utf-8") as out:
            for span in spans:
                context = span.get_span_context()
                assert context is not None
                record = {
                    "name": span.name,
                    "kind": span.kind.name,
                    "trace_id": f"{context.trace_id:032x}",
                    "span_id": f"{context.span_id:016x}",
                    "parent_id": None if span.parent is None else f"{span.parent.span_id:016x}",
                    "attributes": dict(span.attributes or {}),
                }
                out.write(json.dumps(record, default=str) + "\n")
        return SpanExportResult.SUCCESS


_ADD = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
}
tracer = trace.get_tracer("traced-server")


async def list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=[types.Tool(name="add", input_schema=_ADD)])


async def call_tool(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    args = params.arguments or {}
    with tracer.start_as_current_span("add.work"):
        total = args["a"] + args["b"]
    request = ctx.request
    headers = getattr(request, "headers", None)
    header = headers.get("traceparent") if headers is not None else None
    value = {"sum": total, "traceparent_header": header}
    text = types.TextContent(type="text", text=json.dumps(value))
    return types.CallToolResult(content=[text], structured_content=value)


def main() -> None:
    port, spans = int(sys.argv[1]), sys.argv[2]
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLines(spans)))
    trace.set_tracer_provider(provider)
    server: Server[Any] = Server("traced", on_list_tools=list_tools, on_call_tool=call_tool)
    import uvicorn

    uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
