"""(c) Remote `mcp:` dispatch per call, over stdio and Streamable HTTP, on two servers.

Servers: the official SDK's low-level server, and `mcp_minimal_server.py` (plain asyncio
answering `tools/call` directly, so that the client's own cost shows). Per transport and
server: Sire's `mcp:` dispatch on its cached session (Sire's transports), the same over
the SDK's transports (SIRE_MCP_TRANSPORT=sdk), the SDK's own `call_tool` on a reused
session, and a new SDK session per call; the floor is a bare JSON-RPC `tools/call` on
the same server (a line on its pipes for stdio, a POST on a kept-alive http.client
connection for HTTP). Then 50 concurrent calls on one session against the minimal HTTP
server, as a rate beside the sequential rate: once as it is (answering at once, so the
sequential rate is already bound by the client's CPU and concurrency can only overlap
the two processes' work), and once with each answer held back 2 ms, a tool that waits
on something, where concurrency is what hides the wait. Medians.

Targets (issue 4): on the minimal server an `mcp:` call <= 2 ms over HTTP and <= 1.5 ms
over stdio; never slower than the SDK's reused-session call on the same server (within
noise: 10% or 100 us); >= 20x faster than a new session per call; 50 concurrent calls
>= 4x the sequential rate.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from _common import free_port, parse_args, report, wait_listening
from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.remote import RemoteDispatcher
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

MINIMAL = Path(__file__).with_name("mcp_minimal_server.py")
SDK_SERVER = """
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
CONCURRENCY = 50
LATENCY_MS = 2


class Sizes(NamedTuple):
    calls: int
    fresh_http: int
    fresh_stdio: int
    concurrent_rounds: int


class Figures(NamedTuple):
    sire: float
    sire_on_sdk: float
    sdk: float
    fresh: float
    floor: float


def request(request_id: int) -> dict[str, Any]:
    params = {"name": "add", "arguments": PARAMS, "_meta": ENVELOPE}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


@contextmanager
def transports(which: str) -> Iterator[None]:
    """Sire's own MCP transports, or the SDK's (`which="sdk"`), for dispatchers made here."""
    before = os.environ.get("SIRE_MCP_TRANSPORT")
    os.environ["SIRE_MCP_TRANSPORT"] = which
    try:
        yield
    finally:
        if before is None:
            del os.environ["SIRE_MCP_TRANSPORT"]
        else:
            os.environ["SIRE_MCP_TRANSPORT"] = before


async def cached_sessions(spec: ServerSpec, n: int) -> tuple[float, float, float]:
    """Median seconds per call: Sire on its transports, Sire on the SDK's, the SDK itself.

    The three sessions are open at once and measured in alternating rounds, so that all
    see the same machine noise.
    """
    from mcp import Client

    ctx = DispatchContext(execution_id="bench", step_id="add", idempotency_key="bench/add")
    uri = ToolURI.parse("mcp:bench#add")
    ours, theirs = RemoteDispatcher({"bench": spec}), RemoteDispatcher({"bench": spec})
    client = Client(sdk_target(spec))
    try:
        # All three connect at once (a stdio SDK server takes a second to start); the
        # transport is chosen when a session connects, and the SDK client must be
        # entered in this task.
        with transports("sire"):
            ours_connected = asyncio.create_task(ours.dispatch(ctx, uri, PARAMS))
            await asyncio.sleep(0)
        with transports("sdk"):
            theirs_connected = asyncio.create_task(theirs.dispatch(ctx, uri, PARAMS))
            await asyncio.sleep(0)
        await client.__aenter__()
        await asyncio.gather(ours_connected, theirs_connected)
        await client.call_tool("add", PARAMS)
        sire: list[float] = []
        sire_on_sdk: list[float] = []
        sdk: list[float] = []
        for _ in range(max(1, n // 10)):
            sire += [await timed(lambda: ours.dispatch(ctx, uri, PARAMS)) for _ in range(10)]
            sire_on_sdk += [
                await timed(lambda: theirs.dispatch(ctx, uri, PARAMS)) for _ in range(10)
            ]
            sdk += [await timed(lambda: client.call_tool("add", PARAMS)) for _ in range(10)]
        return statistics.median(sire), statistics.median(sire_on_sdk), statistics.median(sdk)
    finally:
        await client.__aexit__(None, None, None)
        await ours.aclose()
        await theirs.aclose()


async def concurrent_calls(spec: ServerSpec, rounds: int) -> tuple[float, float]:
    """Calls per second on one Sire session: one at a time, and `CONCURRENCY` at once."""
    ctx = DispatchContext(execution_id="bench", step_id="add", idempotency_key="bench/add")
    uri = ToolURI.parse("mcp:bench#add")
    with transports("sire"):
        remote = RemoteDispatcher({"bench": spec})
    try:

        async def burst() -> None:
            await asyncio.gather(*(remote.dispatch(ctx, uri, PARAMS) for _ in range(CONCURRENCY)))

        await burst()  # connects, and opens the pool's connections
        sequential: list[float] = []
        concurrent: list[float] = []
        for _ in range(rounds):
            sequential += [
                await timed(lambda: remote.dispatch(ctx, uri, PARAMS)) for _ in range(CONCURRENCY)
            ]
            concurrent.append(await timed(burst))
        return 1 / statistics.median(sequential), CONCURRENCY / statistics.median(concurrent)
    finally:
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


def measure(
    argv: list[str], piped: subprocess.Popen[bytes] | None, port: int, sizes: Sizes
) -> dict[str, Figures]:
    """The figures of one server (`argv` + `stdio` or `http PORT`) by transport.

    `piped` is the server already started over stdio, for the floor; None leaves stdio out.
    """
    url = ServerSpec(url=f"http://127.0.0.1:{port}/mcp")
    http_floor = bare_http(port, sizes.calls)
    http_sire, http_sire_on_sdk, http_sdk = asyncio.run(cached_sessions(url, sizes.calls))
    http_fresh = asyncio.run(sdk_new_session(url, sizes.fresh_http))
    figures = {"HTTP": Figures(http_sire, http_sire_on_sdk, http_sdk, http_fresh, http_floor)}
    if piped is None:
        return figures
    stdio = ServerSpec(command=(*argv, "stdio"))
    stdio_floor = bare_stdio(piped, sizes.calls)
    stdio_sire, stdio_sire_on_sdk, stdio_sdk = asyncio.run(cached_sessions(stdio, sizes.calls))
    stdio_fresh = asyncio.run(sdk_new_session(stdio, sizes.fresh_stdio))
    figures["stdio"] = Figures(stdio_sire, stdio_sire_on_sdk, stdio_sdk, stdio_fresh, stdio_floor)
    return figures


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    args = parse_args(__doc__ or "")
    # --quick leaves out the SDK server over stdio: its processes take seconds to start.
    sizes = Sizes(40, 3, 1, 3) if args.quick else Sizes(1_000, 40, 5, 20)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "sdk_server.py"
        script.write_text(SDK_SERVER)
        sdk_argv = [sys.executable, str(script)]
        minimal_argv = [sys.executable, str(MINIMAL)]
        sdk_port, minimal_port, latent_port = free_port(), free_port(), free_port()
        # The HTTP servers start (and import the SDK) while this process imports it too.
        servers = [
            subprocess.Popen([*sdk_argv, "http", str(sdk_port)]),
            subprocess.Popen([*minimal_argv, "http", str(minimal_port)]),
            subprocess.Popen([*minimal_argv, "http", str(latent_port), str(LATENCY_MS)]),
        ]
        piped = [
            subprocess.Popen([*argv, "stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            for argv in ([minimal_argv] if args.quick else [minimal_argv, sdk_argv])
        ]
        try:
            import mcp  # noqa: F401 - imported once, before anything is timed

            wait_listening(minimal_port, servers[1])
            minimal = measure(minimal_argv, piped[0], minimal_port, sizes)
            minimal_url = ServerSpec(url=f"http://127.0.0.1:{minimal_port}/mcp")
            rates = [asyncio.run(concurrent_calls(minimal_url, sizes.concurrent_rounds))]
            wait_listening(latent_port, servers[2])
            latent_url = ServerSpec(url=f"http://127.0.0.1:{latent_port}/mcp")
            rates.append(asyncio.run(concurrent_calls(latent_url, sizes.concurrent_rounds)))
            wait_listening(sdk_port, servers[0])
            sdk = measure(sdk_argv, None if args.quick else piped[1], sdk_port, sizes)
        finally:
            for server in servers + piped:
                if server.stdin is not None:
                    server.stdin.close()
                server.terminate()
                server.wait(10)
    limits = {"stdio": 1.5e-3, "HTTP": 2e-3}
    for server, figures in (("minimal server", minimal), ("SDK server", sdk)):
        for transport, f in sorted(figures.items(), reverse=True):
            floor_name = "bare line, pipes" if transport == "stdio" else "bare POST, keep-alive"
            where = f"{transport}, {server}"
            parity = f.sire <= max(f.sdk * 1.10, f.sdk + 100e-6)
            target = f"<= SDK reused ({verdict(parity)}), >= 20x new session "
            target += f"({verdict(f.fresh >= 20 * f.sire)}, x{f.fresh / f.sire:.0f})"
            if server == "minimal server":
                limit = limits[transport]
                target = f"<= {limit * 1e3:g} ms ({verdict(f.sire <= limit)}), " + target
            report(f"mcp: dispatch, {where}", f.sire, "us", f.floor, floor_name, target)
            report(
                f"mcp: on SDK transports, {where}", f.sire_on_sdk, "us", f.floor, floor_name, "-"
            )
            report(f"SDK call_tool, reused session, {where}", f.sdk, "us", f.floor, floor_name, "-")
            report(f"SDK new session per call, {where}", f.fresh, "ms", f.floor, floor_name, "-")
    for (sequential, concurrent), server in zip(
        rates, ("minimal server", f"minimal server +{LATENCY_MS} ms"), strict=True
    ):
        ratio = concurrent / sequential
        print(
            f"{f'{CONCURRENCY} concurrent mcp: calls, HTTP, {server}':<54}"
            f"{concurrent:10.0f} calls/s   floor {sequential:9.0f} calls/s (sequential, same "
            f"session)   target >= 4x sequential ({verdict(ratio >= 4)}, x{ratio:.2f})",
            flush=True,
        )


if __name__ == "__main__":
    main()
