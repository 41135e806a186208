"""Sire's own MCP transports (`sire.dispatch.mcp.transport`) on what the SDK servers rarely do.

A small Streamable HTTP server written here (aiohttp.web, on a real socket) answers in
the handshake era with a session id, streams a `tools/call` answer as SSE, and can drop
that stream after a priming event so that the client must resume it with GET and
`Last-Event-ID`. stdio is driven through real processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict

from sire.dispatch.remote import RemoteDispatcher
from sire.errors import TransportError
from sire.model.workflow import ServerSpec

from .conftest import MODERN, call, sdk_stdio

_ADD = {
    "name": "add",
    "inputSchema": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
}


@dataclass
class Seen:
    """What the server received: (HTTP method, JSON-RPC method or None, headers)."""

    requests: list[tuple[str, str | None, Mapping[str, str]]] = field(default_factory=list)

    def of(self, http_method: str, rpc_method: str | None = None) -> list[Mapping[str, str]]:
        return [h for m, r, h in self.requests if m == http_method and r == rpc_method]


@dataclass
class HandshakeServer:
    url: str
    seen: Seen
    #: When set, the `tools/call` stream ends after its priming event, before the answer.
    drop_stream: bool = False


def _result(message: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def _event(data: dict[str, Any] | None, event_id: str | None = None) -> bytes:
    lines = [] if event_id is None else [f"id: {event_id}"]
    lines.append(f"data: {json.dumps(data) if data is not None else ''}")
    return ("\n".join(lines) + "\n\n").encode()


@pytest.fixture
async def handshake_server() -> AsyncIterator[HandshakeServer]:
    """A 2025-era Streamable HTTP server with sessions, SSE answers and resumable streams."""
    seen = Seen()
    pending: dict[str, dict[str, Any]] = {}  # event id -> the answer not yet delivered
    server: HandshakeServer

    async def post(request: web.Request) -> web.StreamResponse:
        message = await request.json()
        method = message.get("method")
        seen.requests.append(("POST", method, CIMultiDict(request.headers)))
        if "id" not in message:
            return web.Response(status=202)
        if method == "server/discover":
            error = {"code": -32601, "message": "Method not found"}
            return web.json_response({"jsonrpc": "2.0", "id": message["id"], "error": error})
        if method == "initialize":
            result = {
                "protocolVersion": "2025-11-25",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "handshake", "version": "1"},
            }
            return web.json_response(_result(message, result), headers={"Mcp-Session-Id": "s-1"})
        if request.headers.get("Mcp-Session-Id") != "s-1":
            return web.Response(status=400, text="no valid session")
        if method == "tools/list":
            return web.json_response(_result(message, {"tools": [_ADD]}))
        arguments = message["params"]["arguments"]
        total = arguments["a"] + arguments["b"]
        answer = _result(message, {"content": [{"type": "text", "text": str(total)}]})
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        await stream.write(b"retry: 10\n\n")
        await stream.write(_event(None, event_id="e-1"))  # priming: where to resume from
        token = message["params"].get("_meta", {}).get("progressToken")
        if token is not None:
            progress = {"progressToken": token, "progress": 1, "total": 1}
            notification = {"jsonrpc": "2.0", "method": "notifications/progress"}
            await stream.write(_event({**notification, "params": progress}, event_id="e-2"))
        if server.drop_stream:
            pending["e-2" if token is not None else "e-1"] = answer
            return stream  # ends the response: the answer must be fetched with GET
        await stream.write(_event(answer, event_id="e-3"))
        return stream

    async def get(request: web.Request) -> web.StreamResponse:
        last = request.headers.get("Last-Event-ID")
        seen.requests.append(("GET", None, CIMultiDict(request.headers)))
        if last is None or last not in pending:
            return web.Response(status=405)
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        await stream.write(_event(pending.pop(last), event_id="e-9"))
        return stream

    async def delete(request: web.Request) -> web.Response:
        seen.requests.append(("DELETE", None, CIMultiDict(request.headers)))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/mcp", post)
    app.router.add_get("/mcp", get)
    app.router.add_delete("/mcp", delete)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server = HandshakeServer(f"http://127.0.0.1:{port}/mcp", seen)
    try:
        yield server
    finally:
        await runner.cleanup()


async def test_a_handshake_era_session_sends_its_id_and_is_deleted_on_close(
    handshake_server: HandshakeServer,
) -> None:
    remote = RemoteDispatcher()
    try:
        assert await call(remote, ServerSpec(url=handshake_server.url), "add", {"a": 1, "b": 2})
    finally:
        await remote.aclose()
    seen = handshake_server.seen
    (initialized,) = seen.of("POST", "notifications/initialized")
    (listed,) = seen.of("POST", "tools/list")
    (called,) = seen.of("POST", "tools/call")
    for headers in (initialized, listed, called):
        assert headers["Mcp-Session-Id"] == "s-1"
        assert headers["MCP-Protocol-Version"] == "2025-11-25"
        assert headers["Accept"] == "application/json, text/event-stream"
    (deleted,) = seen.of("DELETE")
    assert deleted["Mcp-Session-Id"] == "s-1"


async def test_an_sse_answer_delivers_progress_before_the_result(
    handshake_server: HandshakeServer,
) -> None:
    progress: list[tuple[float, float | None]] = []
    remote = RemoteDispatcher()
    try:
        out = await call(
            remote,
            ServerSpec(url=handshake_server.url),
            "add",
            {"a": 2, "b": 3},
            report_progress=lambda p, t, m: progress.append((p, t)),
        )
    finally:
        await remote.aclose()
    assert out["text"] == "5"
    assert progress == [(1, 1)]


async def test_a_dropped_sse_stream_is_resumed_with_get_from_the_last_event(
    handshake_server: HandshakeServer,
) -> None:
    handshake_server.drop_stream = True
    remote = RemoteDispatcher()
    try:
        out = await call(remote, ServerSpec(url=handshake_server.url), "add", {"a": 4, "b": 5})
    finally:
        await remote.aclose()
    assert out["text"] == "9"
    resumed = [h for h in handshake_server.seen.of("GET") if "Last-Event-ID" in h]
    assert [h["Last-Event-ID"] for h in resumed] == ["e-1"]
    assert resumed[0]["Mcp-Session-Id"] == "s-1"


async def test_endpoint_headers_are_sent_with_every_request(
    handshake_server: HandshakeServer,
) -> None:
    spec = ServerSpec(url=handshake_server.url, headers={"Authorization": "Bearer t0k3n"})
    remote = RemoteDispatcher()
    try:
        await call(remote, spec, "add", {"a": 1, "b": 1})
    finally:
        await remote.aclose()
    assert all(h["Authorization"] == "Bearer t0k3n" for _, _, h in handshake_server.seen.requests)


async def test_a_stdio_server_that_exits_between_calls_is_started_again(
    remote: RemoteDispatcher,
) -> None:
    spec = sdk_stdio(MODERN)
    first = (await call(remote, spec, "pid"))["pid"]
    os.kill(first, signal.SIGTERM)
    async with asyncio.timeout(10):
        while True:  # the session notices the exit from the end of the server's stdout
            try:
                os.kill(first, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)
    assert (await call(remote, spec, "pid"))["pid"] != first


async def test_a_stdio_server_that_crashes_at_start_is_reported_with_its_stderr(
    remote: RemoteDispatcher,
) -> None:
    script = "import sys; print('port 99999 is out of range', file=sys.stderr); sys.exit(3)"
    with pytest.raises(TransportError) as caught:
        await call(remote, ServerSpec(command=(sys.executable, "-c", script)), "add")
    assert "exited before completing the MCP handshake" in str(caught.value)
    assert "port 99999 is out of range" in str(caught.value)


async def test_the_sdk_transports_stay_selectable(
    monkeypatch: pytest.MonkeyPatch, handshake_server: HandshakeServer
) -> None:
    monkeypatch.setenv("SIRE_MCP_TRANSPORT", "sdk")
    remote = RemoteDispatcher()
    try:
        assert (await call(remote, sdk_stdio(MODERN), "add", {"a": 1, "b": 2})) == {"sum": 3}
        out = await call(remote, ServerSpec(url=handshake_server.url), "add", {"a": 1, "b": 2})
    finally:
        await remote.aclose()
    assert out["text"] == "3"
    assert "httpx" in handshake_server.seen.requests[0][2].get("User-Agent", "")
