"""A minimal MCP server for the benchmarks: one `add` tool, answered with as little work as can be.

    python mcp_minimal_server.py stdio
    python mcp_minimal_server.py http PORT [DELAY_MS]

It answers `server/discover` (the 2026-07-28 era, which the SDK's client settles on),
`initialize` (the handshake era, for clients that start there), `tools/list` and
`tools/call` directly, on plain asyncio: newline-delimited JSON on stdin/stdout, or a
raw HTTP/1.1 keep-alive server on 127.0.0.1 answering each POST with a JSON body
(notifications get 202, GET and DELETE 405). Its own cost per call is tens of
microseconds, so a client measured against it shows the client's own cost. DELAY_MS
holds each HTTP `tools/call` answer back that long (without blocking other requests):
a tool that waits on something, for measuring concurrency against real latency.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

ERA = "2026-07-28"
HANDSHAKE_ERA = "2025-11-25"
SERVER_INFO = {"name": "bench-minimal", "version": "1"}
TOOL = {
    "name": "add",
    "inputSchema": {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    },
    "outputSchema": {
        "type": "object",
        "properties": {"sum": {"type": "integer"}},
        "required": ["sum"],
    },
}
CAPABILITIES = {"tools": {"listChanged": False}}
#: What the 2026-07-28 era requires on cacheable results (discover, lists).
CACHEABLE = {"cacheScope": "private", "ttlMs": 0}


def answer(message: dict[str, Any]) -> dict[str, Any] | None:
    """The response to one JSON-RPC message, or None for a notification."""
    if "id" not in message:
        return None
    method = message.get("method")
    params = message.get("params") or {}
    result: dict[str, Any]
    if method == "tools/call":
        arguments = params.get("arguments") or {}
        if params.get("name") != "add":
            return _error(message, -32602, f"unknown tool {params.get('name')!r}")
        total = arguments["a"] + arguments["b"]
        result = {
            "content": [{"type": "text", "text": f'{{"sum": {total}}}'}],
            "structuredContent": {"sum": total},
            "isError": False,
        }
    elif method == "tools/list":
        result = {"tools": [TOOL], **CACHEABLE}
    elif method == "server/discover":
        result = {"supportedVersions": [ERA], "capabilities": CAPABILITIES, **CACHEABLE}
    elif method == "initialize":
        result = {
            "protocolVersion": HANDSHAKE_ERA,
            "capabilities": CAPABILITIES,
            "serverInfo": SERVER_INFO,
        }
    elif method == "ping":
        result = {}
    else:
        return _error(message, -32601, "Method not found")
    if method != "initialize":
        result["resultType"] = "complete"
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def _error(message: dict[str, Any], code: int, text: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message["id"], "error": {"code": code, "message": text}}


async def serve_stdio() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out = sys.stdout.buffer
    while line := await reader.readline():
        if not line.strip():
            continue
        response = answer(json.loads(line))
        if response is not None:
            out.write(json.dumps(response).encode() + b"\n")
            out.flush()


class _HttpProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive, Content-Length bodies only: what MCP clients send."""

    delay = 0.0

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            head = bytes(self._buffer[:end]).decode("latin-1").split("\r\n")
            method = head[0].split(" ", 1)[0]
            headers = {}
            for field in head[1:]:
                name, _, value = field.partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self._buffer) < end + 4 + length:
                return
            body = bytes(self._buffer[end + 4 : end + 4 + length])
            del self._buffer[: end + 4 + length]
            self._respond(method, body)

    def _respond(self, method: str, body: bytes) -> None:
        assert self._transport is not None
        if method != "POST":
            self._send(405, b"", "text/plain")
            return
        try:
            response = answer(json.loads(body))
        except (ValueError, KeyError, TypeError) as exc:
            error = {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": str(exc)}}
            self._send(400, json.dumps(error).encode(), "application/json")
            return
        if response is None:
            self._send(202, b"", "text/plain")
        elif self.delay and "result" in response and "content" in response["result"]:
            body = json.dumps(response).encode()
            loop = asyncio.get_running_loop()
            loop.call_later(self.delay, self._send, 200, body, "application/json")
        else:
            self._send(200, json.dumps(response).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        assert self._transport is not None
        if self._transport.is_closing():
            return
        reason = {200: "OK", 202: "Accepted", 400: "Bad Request", 405: "Method Not Allowed"}
        head = (
            f"HTTP/1.1 {status} {reason[status]}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self._transport.write(head.encode() + body)


async def serve_http(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_HttpProtocol, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    if sys.argv[1] == "stdio":
        asyncio.run(serve_stdio())
    else:
        _HttpProtocol.delay = float(sys.argv[3]) / 1e3 if len(sys.argv) > 3 else 0.0
        asyncio.run(serve_http(int(sys.argv[2])))


if __name__ == "__main__":
    main()
