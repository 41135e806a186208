"""(d) `jsonrpc:` dispatch per call against a minimal local JSON-RPC service over HTTP.

Medians per call, each on a kept-alive connection to the same service (a raw asyncio
HTTP/1.1 server in a subprocess, whose own cost is tens of microseconds):

    floor      a bare POST with `http.client` (sync), answer read and parsed
    aiohttp    a bare POST with an aiohttp ClientSession
    httpx      a bare POST with an httpx.AsyncClient
    Sire       `JsonRpcDispatcher.dispatch`: the above plus ids, headers, result mapping

and the rate of 50 concurrent dispatches beside the sequential rate.

Targets: Sire's dispatch within 100 us of the bare aiohttp POST it is built on; 50
concurrent dispatches at least as fast as sequential ones.
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

from _common import free_port, parse_args, report, wait_listening
from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.jsonrpc import JsonRpcDispatcher
from sire.model.uri import ToolURI

SERVER = r"""
import asyncio, json, sys

async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            call = json.loads(await reader.readexactly(length))
            p = call["params"]
            result = {"sum": p["a"] + p["b"]}
            body = json.dumps({"jsonrpc": "2.0", "id": call["id"], "result": result}).encode()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()

async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", int(sys.argv[1]), backlog=1024)
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""

PARAMS = {"a": 1, "b": 2}
HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
CONCURRENT = 50


def body(request_id: int) -> bytes:
    call = {"jsonrpc": "2.0", "id": request_id, "method": "math.add", "params": PARAMS}
    return json.dumps(call).encode()


def bare_http_client(port: int, n: int) -> float:
    """Median seconds of a POST on a kept-alive http.client connection (sync)."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.connect()
    connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    samples = []
    for i in range(n + 1):
        start = time.perf_counter()
        connection.request("POST", "/rpc", body(i), HEADERS)
        answer = json.loads(connection.getresponse().read())
        samples.append(time.perf_counter() - start)
        assert answer["result"] == {"sum": 3}, answer
    connection.close()
    return statistics.median(samples[1:])


async def timed(call: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await call()
    return time.perf_counter() - start


async def clients(url: str, n: int, rounds: int) -> dict[str, float]:
    """Median seconds per call of bare aiohttp, bare httpx and Sire, in alternating rounds.

    Also `concurrent` and `sequential`: the median seconds of `CONCURRENT` dispatches
    run at once, and one after another.
    """
    import aiohttp
    import httpx

    uri = ToolURI.parse(f"jsonrpc:{url}#math.add")
    ctx = DispatchContext(execution_id="bench", step_id="add", idempotency_key="bench/add")
    sire = JsonRpcDispatcher()
    ids = iter(range(1, 1 << 62))

    async def with_aiohttp() -> None:
        async with session.post(url, data=body(next(ids)), headers=HEADERS) as response:
            answer = json.loads(await response.read())
        assert answer["result"] == {"sum": 3}, answer

    async def with_httpx() -> None:
        response = await client.post(url, content=body(next(ids)), headers=HEADERS)
        assert response.json()["result"] == {"sum": 3}

    async def with_sire() -> None:
        assert await sire.dispatch(ctx, uri, PARAMS) == {"sum": 3}

    async def concurrently() -> None:
        await asyncio.gather(*(with_sire() for _ in range(CONCURRENT)))

    async def sequentially() -> None:
        for _ in range(CONCURRENT):
            await with_sire()

    samples: dict[str, list[float]] = {
        name: [] for name in ("aiohttp", "httpx", "sire", "concurrent", "sequential")
    }
    calls = {"aiohttp": with_aiohttp, "httpx": with_httpx, "sire": with_sire}
    async with aiohttp.ClientSession() as session, httpx.AsyncClient() as client:
        try:
            for call in (*calls.values(), concurrently):  # connect; fill the pools
                await call()
            per_round = max(1, n // 10)
            for _ in range(per_round):
                for name, call in calls.items():
                    samples[name] += [await timed(call) for _ in range(10)]
            for _ in range(rounds):
                samples["concurrent"].append(await timed(concurrently))
                samples["sequential"].append(await timed(sequentially))
        finally:
            await sire.aclose()
    return {name: statistics.median(values) for name, values in samples.items()}


def main() -> None:
    args = parse_args(__doc__ or "")
    calls, rounds = (100, 3) if args.quick else (3_000, 40)
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "jsonrpc_bench_server.py"
        script.write_text(SERVER)
        port = free_port()
        server = subprocess.Popen([sys.executable, str(script), str(port)])
        try:
            wait_listening(port, server)
            floor = bare_http_client(port, calls)
            figures = asyncio.run(clients(f"http://127.0.0.1:{port}/rpc", calls, rounds))
        finally:
            server.terminate()
            server.wait(10)
    sire, bare = figures["sire"], figures["aiohttp"]
    verdict = "met" if sire <= bare + 100e-6 else "MISSED"
    name = "bare POST, http.client keep-alive"
    report(
        "jsonrpc: dispatch (Sire), kept-alive pool",
        sire,
        "us",
        floor,
        name,
        f"<= aiohttp + 100 us ({verdict})",
    )
    report("bare POST, aiohttp ClientSession", bare, "us", floor, name, "-")
    report("bare POST, httpx.AsyncClient", figures["httpx"], "us", floor, name, "-")
    concurrent = CONCURRENT / figures["concurrent"]
    sequential = CONCURRENT / figures["sequential"]
    faster = "met" if concurrent >= sequential else "MISSED"
    print(
        f"{'jsonrpc: 50 concurrent dispatches':<54} {concurrent:10.0f} calls/s"
        f"   sequential {sequential:9.0f} calls/s   target >= sequential ({faster})",
        flush=True,
    )


if __name__ == "__main__":
    main()
