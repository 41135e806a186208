"""The MCP face of `sire mcp serve`: the official SDK's low-level Server over a Catalog.

Above: `sire.serve.transports` (stdio, Streamable HTTP). Below: the Catalog, in Sire's
terms. The low-level server is used because it serves results as given: each tool's own
`inputSchema` / `outputSchema` are listed verbatim; a result is its `structuredContent`
plus one text block holding the same JSON (for clients without structured output); a
failed call, or arguments that do not fit, is `isError: true` with Sire's one-sentence
message; an unknown tool is the protocol error the spec and the SDK use (-32602,
`Unknown tool: <name>`). Progress notifications go out in order and before the result.
This module imports the SDK: import it only to serve.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import warnings
from collections.abc import Mapping
from typing import Any

import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from sire.dispatch.dispatcher import ignore_progress
from sire.dispatch.mcp.mapping import IDEMPOTENCY_KEY
from sire.errors import SireError
from sire.serve.catalog import Call, Catalog, Outcome, ServedTool

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "Sire's built-in tools (file tools are confined to the server's workspace) and Sire "
    "workflows served as tools: each workflow call runs one durable Sire execution, reports "
    "each finished step as progress, and returns the workflow's outputs."
)


def build_server(catalog: Catalog) -> Server[Any]:
    """A low-level MCP server answering `tools/list` and `tools/call` from `catalog`."""
    from sire import __version__

    listing = types.ListToolsResult(
        tools=[types.Tool.model_validate(tool, by_name=False) for tool in catalog.list_tools()]
    )

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return listing

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        tool = catalog.get(params.name)
        if tool is None:
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {params.name}")
        meta: Mapping[str, Any] = ctx.meta or {}
        progress = _Progress(ctx.session, params.name) if _wants_progress(meta) else None
        call = Call(
            idempotency_key=_string(meta.get(IDEMPOTENCY_KEY)),
            trace_context={
                key: value
                for key in ("traceparent", "tracestate")
                if isinstance(value := meta.get(key), str)
            },
            report_progress=progress.report if progress is not None else ignore_progress,
        )
        try:
            result = await _answer(tool, params.arguments or {}, call)
        except BaseException:
            if progress is not None:
                progress.cancel()
            raise
        if progress is not None:
            await progress.flush()
        return result

    async def set_logging_level(
        ctx: ServerRequestContext[Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        # Sire sends no log messages to clients; answering keeps `logging` declared, as
        # handshake-era clients (and the conformance suite) expect of a server.
        return types.EmptyResult()

    with warnings.catch_warnings():
        # Logging is deprecated from 2026-07-28 (SEP-2577) but part of the older eras.
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        return Server(
            "sire",
            version=__version__,
            title="Sire",
            instructions=INSTRUCTIONS,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_set_logging_level=set_logging_level,
            get_tool_input_schema=catalog.input_schema,
        )


async def _answer(
    tool: ServedTool, arguments: Mapping[str, Any], call: Call
) -> types.CallToolResult:
    """Call `tool`; its outcome, or its failure as `isError` with Sire's message."""
    started = time.perf_counter()
    try:
        outcome = await tool.call(arguments, call)
    except SireError as exc:
        log.info("sire.serve.call_failed tool=%s error=%s", tool.name, exc)
        return error_result(str(exc))
    except Exception as exc:  # a bug in Sire: the caller gets a sentence, stderr the traceback
        log.exception("sire.serve.call_crashed tool=%s", tool.name)
        return error_result(f"internal error in Sire: {type(exc).__name__}: {exc}")
    log.debug("sire.serve.call tool=%s ms=%.3f", tool.name, (time.perf_counter() - started) * 1000)
    return success_result(outcome)


def success_result(outcome: Outcome) -> types.CallToolResult:
    """`structuredContent` and one text block with the same JSON."""
    text = json.dumps(outcome.output, ensure_ascii=False)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=outcome.output,
        meta=dict(outcome.meta) if outcome.meta else None,
    )


def error_result(message: str) -> types.CallToolResult:
    """A tool failure, as MCP wants it: `isError: true` and the message as text."""
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=message)], is_error=True
    )


def _string(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _wants_progress(meta: Mapping[str, Any]) -> bool:
    """Whether the caller gave a progress token."""
    return meta.get("progress_token", meta.get("progressToken")) is not None


class _Progress:
    """A call's progress notifications, sent in order from synchronous callbacks.

    Each `report` queues one send behind the previous one; `flush` waits for all of them
    (so they precede the result), `cancel` drops those not yet sent.
    """

    def __init__(self, session: ServerSession, tool: str) -> None:
        self._session = session
        self._tool = tool
        self._last: asyncio.Task[None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._sent = 0

    def report(self, progress: float, total: float | None, message: str | None) -> None:
        self._sent += 1
        task = asyncio.get_running_loop().create_task(
            self._send(self._last, progress, total, message),
            name=f"sire-serve-progress-{self._tool}-{self._sent}",
        )
        self._last = task
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _send(
        self,
        previous: asyncio.Task[None] | None,
        progress: float,
        total: float | None,
        message: str | None,
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})
        try:
            await self._session.report_progress(progress, total, message)
        except Exception as exc:  # the caller went away: nobody is left to tell
            log.debug("sire.serve.progress_lost tool=%s error=%s", self._tool, exc)

    async def flush(self) -> None:
        if self._pending:
            await asyncio.wait(set(self._pending))

    def cancel(self) -> None:
        for task in self._pending:
            task.cancel()
