"""An MCP server for the RemoteDispatcher tests, on the official SDK's low-level API.

    python sdk_server.py stdio [--legacy]
    python sdk_server.py http PORT [--legacy]

`--legacy` answers `server/discover` with "method not found", so a client falls back to
the `initialize` handshake: the protocol era of servers up to 2025-11-25. Without it the
SDK's client settles on the stateless 2026-07-28 era.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.runner import serve_loop
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

_INTEGERS = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
    "required": ["a", "b"],
    "additionalProperties": False,
}
_SUM = {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]}
_NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}

TOOLS = [
    types.Tool(name="add", input_schema=_INTEGERS, output_schema=_SUM),
    types.Tool(
        name="shout",
        description="Text only: the text in capitals.",
        input_schema={
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        },
    ),
    types.Tool(name="json_text", input_schema=_NO_ARGUMENTS),
    types.Tool(
        name="fail",
        description="Reports `message` as a tool error (isError).",
        input_schema={
            "type": "object",
            "properties": {"message": {"type": "string"}},
            "required": ["message"],
        },
    ),
    types.Tool(
        name="slow",
        description="Reports progress and sleeps; a cancelled call's `token` is remembered.",
        input_schema={
            "type": "object",
            "properties": {"seconds": {"type": "number"}, "token": {"type": "string"}},
            "required": ["seconds"],
        },
    ),
    types.Tool(
        name="chatty",
        description="Logs each of `lines` as an MCP log notification (logger `chatty`, level "
        "`level`) and on stderr (`stderr: <line>`), `pause` seconds apart.",
        input_schema={
            "type": "object",
            "properties": {
                "lines": {"type": "array", "items": {"type": "string"}},
                "level": {"type": "string"},
                "pause": {"type": "number"},
            },
            "required": ["lines"],
        },
    ),
    types.Tool(name="bad_output", input_schema=_NO_ARGUMENTS, output_schema=_SUM),
    types.Tool(name="meta", input_schema=_NO_ARGUMENTS),
    types.Tool(name="pid", input_schema=_NO_ARGUMENTS),
    types.Tool(name="crash", description="Exits the process mid-call.", input_schema=_NO_ARGUMENTS),
    types.Tool(
        name="calls", description="How many calls reached this process.", input_schema=_NO_ARGUMENTS
    ),
    types.Tool(
        name="cancelled",
        description="Whether the `slow` call with this `token` was cancelled.",
        input_schema={
            "type": "object",
            "properties": {"token": {"type": "string"}},
            "required": ["token"],
        },
    ),
]
_calls = 0
_cancelled: set[str] = set()


def _structured(value: dict[str, Any]) -> types.CallToolResult:
    text = types.TextContent(type="text", text=json.dumps(value))
    return types.CallToolResult(content=[text], structured_content=value)


def _text(text: str, *, is_error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=is_error
    )


async def list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    global _calls
    _calls += 1
    args = params.arguments or {}
    match params.name:
        case "add":
            return _structured({"sum": args["a"] + args["b"]})
        case "shout":
            return _text(args["text"].upper() + "!")
        case "json_text":
            return _text(json.dumps({"city": "Paris", "celsius": 21}))
        case "fail":
            return _text(args["message"], is_error=True)
        case "slow":
            await ctx.session.report_progress(1, 2, "started")
            try:
                await anyio.sleep(args["seconds"])
            except anyio.get_cancelled_exc_class():
                _cancelled.add(args.get("token", ""))
                raise
            await ctx.session.report_progress(2, 2, "done")
            return _structured({"slept": args["seconds"]})
        case "chatty":
            for i, line in enumerate(args["lines"]):
                if i:
                    await anyio.sleep(args.get("pause", 0))
                with warnings.catch_warnings():  # the logging capability is deprecated
                    warnings.simplefilter("ignore")
                    await ctx.session.send_log_message(
                        args.get("level", "info"), line, logger="chatty"
                    )
                print(f"stderr: {line}", file=sys.stderr, flush=True)
            return _structured({"logged": len(args["lines"])})
        case "bad_output":
            return _structured({"sum": "not a number"})
        case "meta":
            return _structured({"meta": dict(ctx.meta or {}), "era": ctx.protocol_version})
        case "pid":
            return _structured({"pid": os.getpid()})
        case "crash":
            os._exit(3)
        case "calls":
            return _structured({"calls": _calls})
        case "cancelled":
            return _structured({"cancelled": args["token"] in _cancelled})
    raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name}")


async def no_discover(ctx: ServerRequestContext[Any], params: types.RequestParams) -> Any:
    raise MCPError(types.METHOD_NOT_FOUND, "Method not found")


def build(legacy: bool) -> Server[Any]:
    server: Server[Any] = Server("sire-test", on_list_tools=list_tools, on_call_tool=call_tool)
    if legacy:
        server.add_request_handler("server/discover", types.RequestParams, no_discover)
    return server


async def serve_stdio(server: Server[Any], legacy: bool) -> None:
    async with stdio_server() as (read, write):
        if not legacy:
            await server.run(read, write, server.create_initialization_options())
            return
        # The handshake-only loop: what a server of the 2025 protocol era speaks.
        async with server.lifespan(server) as state:
            await serve_loop(
                server,
                read,
                write,
                lifespan_state=state,
                init_options=server.create_initialization_options(),
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("transport", choices=["stdio", "http"])
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--legacy", action="store_true")
    args = parser.parse_args()
    server = build(args.legacy)
    if args.transport == "stdio":
        anyio.run(serve_stdio, server, args.legacy)
    else:
        import uvicorn

        app = server.streamable_http_app()
        uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
