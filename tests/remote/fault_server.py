"""A misbehaving MCP server for the fault tests, on the official SDK's low-level API.

    python fault_server.py stdio [--legacy]
    python fault_server.py http PORT [--legacy]

It completes the handshake and lists its tools like any server; then some tools never
answer. `--legacy` makes it a server of the 2025 (`initialize` handshake) protocol era,
as in `sdk_server.py`.

    pid        answers at once: {"pid": <this process>}
    hang       reports progress once, then never answers (the process stays responsive)
    freeze     blocks the whole process for `seconds` (it answers nothing meanwhile)
    hang_once  the first call in any process writes this pid to `marker` and never
               answers; once `marker` exists, calls answer {"pid", "first"} at once
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.runner import serve_loop
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

_NO_ARGUMENTS: dict[str, Any] = {"type": "object", "properties": {}}

TOOLS = [
    types.Tool(name="pid", input_schema=_NO_ARGUMENTS),
    types.Tool(name="hang", description="Never answers.", input_schema=_NO_ARGUMENTS),
    types.Tool(
        name="freeze",
        description="Blocks the process for `seconds`.",
        input_schema={
            "type": "object",
            "properties": {"seconds": {"type": "number"}},
            "required": ["seconds"],
        },
    ),
    types.Tool(
        name="hang_once",
        description="Hangs until `marker` exists (the first call creates it), then answers.",
        input_schema={
            "type": "object",
            "properties": {"marker": {"type": "string"}},
            "required": ["marker"],
        },
    ),
]


def _structured(value: dict[str, Any]) -> types.CallToolResult:
    text = types.TextContent(type="text", text=json.dumps(value))
    return types.CallToolResult(content=[text], structured_content=value)


async def list_tools(
    ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(
    ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
) -> types.CallToolResult:
    args = params.arguments or {}
    match params.name:
        case "pid":
            return _structured({"pid": os.getpid()})
        case "hang":
            await ctx.session.report_progress(0, None, "hanging")
            await anyio.sleep_forever()
        case "freeze":
            time.sleep(args["seconds"])  # noqa: ASYNC251 - blocking on purpose: all stops
            return _structured({"froze": args["seconds"]})
        case "hang_once":
            marker = anyio.Path(args["marker"])
            if await marker.exists():
                first = int(await marker.read_text())
                return _structured({"pid": os.getpid(), "first": first})
            await marker.write_text(str(os.getpid()))
            await anyio.sleep_forever()
    raise MCPError(types.INVALID_PARAMS, f"unknown tool {params.name}")


async def no_discover(ctx: ServerRequestContext[Any], params: types.RequestParams) -> Any:
    raise MCPError(types.METHOD_NOT_FOUND, "Method not found")


def build(legacy: bool) -> Server[Any]:
    server: Server[Any] = Server("sire-fault", on_list_tools=list_tools, on_call_tool=call_tool)
    if legacy:
        server.add_request_handler("server/discover", types.RequestParams, no_discover)
    return server


async def serve_stdio(server: Server[Any], legacy: bool) -> None:
    async with stdio_server() as (read, write):
        if not legacy:
            await server.run(read, write, server.create_initialization_options())
            return
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
