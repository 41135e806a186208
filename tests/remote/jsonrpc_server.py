"""A small real JSON-RPC 2.0 service over HTTP (aiohttp.web), for the `jsonrpc:` tests.

Run as `python jsonrpc_server.py PORT`; it answers POSTs on any path. Methods:

    math.add {a, b}                 {"sum": a + b}; -32602 unless both are integers
    echo {...}                      the params
    scalar {value}                  `value` as the result, whatever its type
    request {}                      the request's id and Sire's headers
    fail {code, message, data?}     that error object
    status {status, body?, json?}   that HTTP status, with `body` as text or `json` as JSON
    raw {body, content_type?}       HTTP 200 with exactly `body`
    big {size, chunked?}            {"blob": "x" * size}, with or without Content-Length
    hang {token}                    never answers; `probe` tells when it started and whether
                                    it was cancelled (the client closed the connection)
    probe {token}                   {"started": bool, "cancelled": bool}
    flaky {token, failures, status} fails `failures` times per token with `status`, then
                                    {"attempts": n}
    gather {token, n}               waits (10 s at most) until `n` calls with `token` are in
                                    flight; {"peer": the client's port}
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import defaultdict
from typing import Any

from aiohttp import web

started: set[str] = set()
cancelled: set[str] = set()
attempts: dict[str, int] = defaultdict(int)
gathered: dict[str, int] = defaultdict(int)
gathered_event: dict[str, asyncio.Event] = defaultdict(asyncio.Event)


def answer(request_id: Any, result: Any) -> web.Response:
    return web.json_response({"jsonrpc": "2.0", "id": request_id, "result": result})


def error(request_id: Any, code: int, message: str, data: Any = None) -> web.Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        body["data"] = data
    return web.json_response({"jsonrpc": "2.0", "id": request_id, "error": body})


async def handle(request: web.Request) -> web.StreamResponse:
    peername = request.transport.get_extra_info("peername") if request.transport else None
    try:
        call = json.loads(await request.read())
    except ValueError:
        return error(None, -32700, "Parse error")
    rid, method, params = call.get("id"), call.get("method"), call.get("params", {})
    if not isinstance(params, dict):
        return error(rid, -32602, "Invalid params", "params must be an object")
    if method == "math.add":
        a, b = params.get("a"), params.get("b")
        if not isinstance(a, int) or not isinstance(b, int):
            return error(rid, -32602, "Invalid params", "a and b must be integers")
        return answer(rid, {"sum": a + b})
    if method == "echo":
        return answer(rid, params)
    if method == "scalar":
        return answer(rid, params.get("value"))
    if method == "request":
        headers = request.headers
        return answer(
            rid,
            {
                "id": rid,
                "jsonrpc": call.get("jsonrpc"),
                "idempotency_key": headers.get("Idempotency-Key"),
                "traceparent": headers.get("traceparent"),
                "tracestate": headers.get("tracestate"),
                "content_type": headers.get("Content-Type"),
            },
        )
    if method == "fail":
        return error(rid, params["code"], params["message"], params.get("data"))
    if method == "status":
        if "json" in params:
            return web.json_response(params["json"], status=params["status"])
        return web.Response(status=params["status"], text=params.get("body", ""))
    if method == "raw":
        content_type = params.get("content_type", "text/plain")
        return web.Response(body=params["body"].encode(), content_type=content_type)
    if method == "big":
        content = json.dumps(
            {"jsonrpc": "2.0", "id": rid, "result": {"blob": "x" * params["size"]}}
        )
        if not params.get("chunked"):
            return web.Response(body=content.encode(), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        data = content.encode()
        for start in range(0, len(data), 4096):
            await response.write(data[start : start + 4096])
        await response.write_eof()
        return response
    if method == "hang":
        token = params["token"]
        started.add(token)
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.add(token)
            raise
        return answer(rid, {})
    if method == "probe":
        token = params["token"]
        return answer(rid, {"started": token in started, "cancelled": token in cancelled})
    if method == "flaky":
        token = params["token"]
        attempts[token] += 1
        if attempts[token] <= params.get("failures", 1):
            return web.Response(status=params.get("status", 503), text="try again later")
        return answer(rid, {"attempts": attempts[token]})
    if method == "gather":
        token = params["token"]
        gathered[token] += 1
        if gathered[token] >= params["n"]:
            gathered_event[token].set()
        async with asyncio.timeout(10):
            await gathered_event[token].wait()
        return answer(rid, {"peer": peername[1] if peername else None})
    return error(rid, -32601, "Method not found", method)


def main() -> None:
    app = web.Application(client_max_size=1024 * 1024)
    app.router.add_post("/{tail:.*}", handle)
    web.run_app(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        print=None,
        access_log=None,
        handler_cancellation=True,  # a closed connection cancels its handler (see `hang`)
    )


if __name__ == "__main__":
    main()
