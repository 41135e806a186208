"""(c) Remote `mcp:` dispatch per call, over stdio and Streamable HTTP, against an SDK server.

Per transport: Sire's `mcp:` dispatch on its cached session, the SDK's own `call_tool`
on a reused session, and a new SDK session per call; the floor is a bare JSON-RPC
`tools/call` on the same server (a line on its pipes for stdio, a POST on a kept-alive
http.client connection for HTTP). Medians per call.

Target: Sire's dispatch within 10% (or 100 us) of the SDK's reused-session call.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from _common import parse_args, report
from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.remote import RemoteDispatcher
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

SERVER = """
import sys
import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.stdio import stdio_server

SCHEMA = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
          "required": ["a", "b"]}
OUT = {"type": "object", "properties": {"sum": {"type": "integer"}}, "required": ["sum"]}

async def list_tools(ctx, params):
    return types.ListToolsResult(tools=[types.Tool(name="add", input_schema=SCHEMA,
                                                   output_schema=OUT)])

async def call_tool(ctx, params):
    total = params.arguments["a"] + params.arguments["b"]
    text = types.TextContent(type="text", text='{"sum": %d}' % total)
    return types.CallToolResult(content=[text], structured_content={"sum": total})

server = Server("bench", on_list_tools=list_tools, on_call_tool=call_tool)

async def stdio():
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())

if sys.argv[1] == "stdio":
    anyio.run(stdio)
else:
    import uvicorn
    uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=int(sys.argv[2]),
                log_level="warning")
"""

ERA = "2026-07-28"
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": ERA,
    "io.modelcontextprotocol/clientInfo": {"name": "bench", "version": "0"},
    "io.modelcontextprotocol/clientCapabilities": {},
}
PARAMS = {"a": 1, "b": 2}


def request(request_id: int) -> dict[str, Any]:
    params = {"name": "add", "arguments": PARAMS, "_meta": ENVELOPE}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


async def cached_sessions(spec: ServerSpec, n: int) -> tuple[float, float]:
    """Median seconds per call of Sire's dispatch and of the SDK's reused session.

    Both sessions are open at once and measured in alternating rounds, so that both see
    the same machine noise.
    """
    from mcp import Client

    remote = RemoteDispatcher({"bench": spec})
    ctx = DispatchContext(execution_id="bench", step_id="add", idempotency_key="bench/add")
    uri = ToolURI.parse("mcp:bench#add")
    client = Client(sdk_target(spec))
    try:
        # Connect both at once; the SDK client must be entered in this task.
        sire_connected = asyncio.create_task(remote.dispatch(ctx, uri, PARAMS))
        await client.__aenter__()
        await sire_connected
        await client.call_tool("add", PARAMS)
        sire: list[float] = []
        sdk: list[float] = []
        for _ in range(max(1, n // 10)):
            sire += [await timed(lambda: remote.dispatch(ctx, uri, PARAMS)) for _ in range(10)]
            sdk += [await timed(lambda: client.call_tool("add", PARAMS)) for _ in range(10)]
        return statistics.median(sire), statistics.median(sdk)
    finally:
        await client.__aexit__(None, None, None)
        await remote.aclose()


def sdk_target(spec: ServerSpec) -> Any:
    from mcp import StdioServerParameters

    if spec.url is not None:
        return spec.url
    return StdioServerParameters(command=spec.command[0], args=list(spec.command[1:]))


async def sdk_new_session(spec: ServerSpec, n: int) -> float:
    """Median seconds of a call on a new SDK session (a new process, for stdio)."""
    from mcp import Client

    async def one() -> None:
        async with Client(sdk_target(spec)) as client:
            await client.call_tool("add", PARAMS)

    return statistics.median([await timed(one) for _ in range(n)])


def bare_stdio(process: subprocess.Popen[bytes], n: int) -> float:
    """Median seconds of one `tools/call` line written to the server and its answer read."""
    assert process.stdin is not None
    assert process.stdout is not None
    samples = []
    try:
        for i in range(n + 1):
            start = time.perf_counter()
            process.stdin.write(json.dumps(request(i)).encode() + b"\n")
            process.stdin.flush()
            answer = json.loads(process.stdout.readline())
            samples.append(time.perf_counter() - start)
            assert answer["result"]["structuredContent"] == {"sum": 3}, answer
    finally:
        process.stdin.close()
        process.wait(10)
    return statistics.median(samples[1:])


def bare_http(port: int, n: int) -> float:
    """Median seconds of one `tools/call` POST on a kept-alive connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "Mcp-Protocol-Version": ERA,
        "Mcp-Method": "tools/call",
        "Mcp-Name": "add",
    }
    samples = []
    for i in range(n + 1):
        start = time.perf_counter()
        connection.request("POST", "/mcp", json.dumps(request(i)), headers)
        answer = json.loads(connection.getresponse().read())
        samples.append(time.perf_counter() - start)
        assert answer["result"]["structuredContent"] == {"sum": 3}, answer
    connection.close()
    return statistics.median(samples[1:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the bench server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def target_met(sire: float, sdk: float) -> str:
    return "met" if sire <= max(sdk * 1.10, sdk + 100e-6) else "MISSED"


def main() -> None:
    args = parse_args(__doc__ or "")
    calls, http_sessions, stdio_sessions = (100, 5, 1) if args.quick else (1_000, 40, 5)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench_server.py"
        script.write_text(SERVER)
        stdio_argv = [sys.executable, str(script), "stdio"]
        port = free_port()
        # Both servers start (and import the SDK) while this process imports it too.
        http = subprocess.Popen([sys.executable, str(script), "http", str(port)])
        piped = subprocess.Popen(stdio_argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            stdio_floor = bare_stdio(piped, calls)
            stdio = ServerSpec(command=tuple(stdio_argv))
            stdio_sire, stdio_sdk = asyncio.run(cached_sessions(stdio, calls))
            stdio_fresh = asyncio.run(sdk_new_session(stdio, stdio_sessions))
            wait_listening(port, http)
            http_floor = bare_http(port, calls)
            url = ServerSpec(url=f"http://127.0.0.1:{port}/mcp")
            http_sire, http_sdk = asyncio.run(cached_sessions(url, calls))
            http_fresh = asyncio.run(sdk_new_session(url, http_sessions))
        finally:
            http.terminate()
            http.wait(10)
    figures = {
        "stdio": (stdio_sire, stdio_sdk, stdio_fresh, stdio_floor, "bare JSON-RPC line, pipes"),
        "Streamable HTTP": (http_sire, http_sdk, http_fresh, http_floor, "bare POST, keep-alive"),
    }
    for transport, (sire, sdk, fresh, floor, floor_name) in figures.items():
        verdict = f"<= SDK x1.1 or +100 us ({target_met(sire, sdk)})"
        report(
            f"mcp: dispatch, {transport}, cached session", sire, "us", floor, floor_name, verdict
        )
        report(f"SDK call_tool, {transport}, reused session", sdk, "us", floor, floor_name, "-")
        report(f"SDK new session per call, {transport}", fresh, "ms", floor, floor_name, "-")


if __name__ == "__main__":
    main()
