"""JsonRpcDispatcher: `jsonrpc:` tool URIs, called as JSON-RPC 2.0 methods over HTTP.

Above: the engine (through `DispatcherMux`), one `dispatch` per attempt. Below: one
pooled, kept-alive aiohttp `ClientSession` per event loop, created on the first call;
aiohttp is imported then, so a workflow without `jsonrpc:` steps never loads it.

    jsonrpc:http://host:port/rpc#math.add    POST to that URL (https likewise):
        {"jsonrpc": "2.0", "id": <unique per call>, "method": "math.add", "params": {...}}

The params are the step's params, as a by-name object. The step output is the
response's `result` when it is a JSON object, otherwise `{"result": <value>}`. Each
request carries the idempotency key as an `Idempotency-Key` header and the W3C trace
context as `traceparent` (and `tracestate`) headers. There are no named servers.

Failures, by what a next attempt could change:

    JSON-RPC error object      ToolError with its code and message (retryable), except
                               -32601 ToolNotFoundError, -32602 ToolInputError, and
                               -32700 / -32600 (the request was refused) not retryable
    HTTP 429, 5xx              TransportError (retryable)
    other HTTP 3xx, 4xx        ToolError, not retryable (the error object's class when
                               the body carries one); redirects are not followed
    unreachable, timed out,    TransportError (retryable)
    broken connection, a body
    that is not a JSON-RPC
    response
    body over the size limit   ToolError, not retryable
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn
from urllib.parse import urlsplit

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.mcp.mapping import IDEMPOTENCY_KEY, request_meta
from sire.errors import (
    DispatchError,
    ToolError,
    ToolInputError,
    ToolNotFoundError,
    TransportError,
)
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

if TYPE_CHECKING:
    from aiohttp import ClientResponse, ClientSession

#: Bound on a call when the context carries no deadline.
DEFAULT_CALL_TIMEOUT = 300.0
#: The largest response body read, in bytes, unless the dispatcher is given another.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Connections kept per event loop, across every endpoint.
MAX_CONNECTIONS = 100

_PARSE_ERROR = -32700
_INVALID_REQUEST = -32600
_METHOD_NOT_FOUND = -32601
_INVALID_PARAMS = -32602
#: How much of an unexpected body an error message quotes.
_QUOTE = 200
_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
#: One encoder for every request (`json.dumps` with options builds one per call); NaN and
#: infinities are refused, as JSON has no such numbers.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode


class _Endpoint(NamedTuple):
    """A checked endpoint URL, and how messages name it (without any credentials)."""

    url: str
    shown: str


class JsonRpcDispatcher:
    """Dispatches `jsonrpc:` calls as JSON-RPC 2.0 POSTs, on one connection pool per loop.

    A pool belongs to the event loop of its first call; `aclose` closes the pool of the
    running loop and forgets the others.
    """

    def __init__(
        self,
        *,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        """Create a dispatcher.

        Args:
            call_timeout: bound on a call whose context has no deadline, in seconds.
            max_response_bytes: the largest response body read; a larger one fails.
        """
        self._call_timeout = call_timeout
        self._max_bytes = max_response_bytes
        self._ids = itertools.count(1)
        self._pools: dict[asyncio.AbstractEventLoop, ClientSession] = {}
        self._endpoints: dict[str, _Endpoint] = {}

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None:
        """Check offline that `tool` names an http(s) URL.

        Raises:
            ToolNotFoundError: it does not.
        """
        self._endpoint(tool)

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Call method `tool.tool` at `tool.target` with `params` by name; return the output.

        Raises:
            ToolNotFoundError: the URL is not http(s), or the service has no such method.
            ToolInputError: the service rejected the params (-32602), or they are not JSON.
            ToolError: the service answered with another error, or an HTTP 3xx/4xx status,
                or a body over the size limit.
            TransportError: the service could not be reached, answered 429 or 5xx or not
                in JSON-RPC, or did not answer before the deadline (retryable).
        """
        endpoint = self._endpoint(tool)
        request_id = next(self._ids)
        try:
            body = _encode(
                {"jsonrpc": "2.0", "id": request_id, "method": tool.tool, "params": dict(params)}
            ).encode()
        except (TypeError, ValueError) as exc:
            raise ToolInputError(
                f"{_method(tool, endpoint)}: the params are not JSON ({exc})", tool_uri=str(tool)
            ) from None
        if ctx.deadline is None:
            budget = self._call_timeout
        else:
            budget = max(0.0, ctx.deadline - time.monotonic())
        try:
            async with asyncio.timeout(budget):
                return await self._post(endpoint, tool, request_id, body, _headers(ctx))
        except DispatchError as exc:
            exc.tool_uri = str(tool)
            raise
        except TimeoutError:
            raise TransportError(
                f"{_service(endpoint)} did not answer '{tool.tool}' within {budget:.3g} s",
                tool_uri=str(tool),
            ) from None
        except Exception as exc:
            raise _failure(exc, tool, endpoint) from exc

    async def _post(
        self,
        endpoint: _Endpoint,
        tool: ToolURI,
        request_id: int,
        body: bytes,
        headers: dict[str, str],
    ) -> dict[str, Any]:
        response = await self._pool().post(
            endpoint.url, data=body, headers=headers, allow_redirects=False
        )
        status = response.status
        try:
            if 200 <= status < 300:
                content = await self._read(response, tool, endpoint)
            else:
                # Read only for an error object or a message to quote.
                content = await _read_some(response, self._max_bytes)
        except BaseException:
            response.close()  # a cancelled or broken read must not go back to the pool
            raise
        response.release()
        if 200 <= status < 300:
            return _output(_parse(content, tool, endpoint), tool, endpoint, request_id)
        _refuse(status, response.reason, content, tool, endpoint, request_id)

    async def _read(self, response: ClientResponse, tool: ToolURI, endpoint: _Endpoint) -> bytes:
        """The response body, read up to the size limit.

        Raises:
            ToolError: the body is larger than the limit.
        """
        length = response.content_length
        limit = self._max_bytes
        if length is not None and length > limit:
            raise _too_large(tool, endpoint, limit)
        if length is not None and "Content-Encoding" not in response.headers:
            return await response.read()
        content = await _read_some(response, limit)
        if len(content) > limit:
            raise _too_large(tool, endpoint, limit)
        return content

    def _pool(self) -> ClientSession:
        """The session of the running event loop, created on its first call."""
        loop = asyncio.get_running_loop()
        session = self._pools.get(loop)
        if session is None or session.closed:
            import aiohttp

            # Pools of loops that have ended cannot be closed any more, only dropped.
            for old in [old for old in self._pools if old.is_closed()]:
                del self._pools[old]
            session = self._pools[loop] = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
                # Every call is bounded by its own deadline instead (asyncio.timeout).
                timeout=aiohttp.ClientTimeout(),
                headers=_HEADERS,
            )
        return session

    def _endpoint(self, tool: ToolURI) -> _Endpoint:
        """The checked endpoint of `tool`, cached by URL."""
        endpoint = self._endpoints.get(tool.target)
        if endpoint is None:
            endpoint = self._endpoints[tool.target] = _Endpoint(
                _url(tool.target, tool), _shown(tool.target)
            )
        return endpoint

    async def aclose(self) -> None:
        """Close the connection pool of the running event loop; forget the others."""
        pools, self._pools = self._pools, {}
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        session = pools.get(loop) if loop is not None else None
        if session is not None:
            await session.close()


def _url(target: str, tool: ToolURI) -> str:
    """`target` when it is an http(s) URL with a host.

    Raises:
        ToolNotFoundError: it is not.
    """
    if not target.startswith(("http://", "https://")):
        raise ToolNotFoundError(
            f"'{tool}': a JSON-RPC endpoint must be an http:// or https:// URL "
            "(jsonrpc: has no named servers)",
            tool_uri=str(tool),
        )
    try:
        parts = urlsplit(target)
        _ = parts.port  # raises ValueError when the port is not a number in range
    except ValueError as exc:
        raise ToolNotFoundError(
            f"'{tool}': the JSON-RPC endpoint URL is invalid ({exc})", tool_uri=str(tool)
        ) from None
    if not parts.hostname or any(c.isspace() or ord(c) < 32 for c in target):
        raise ToolNotFoundError(
            f"'{tool}': the JSON-RPC endpoint URL has no host or contains whitespace",
            tool_uri=str(tool),
        )
    return target


def _shown(target: str) -> str:
    """`target` with any user and password masked, for messages."""
    parts = urlsplit(target)
    if "@" not in parts.netloc:
        return target
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"***@{host}").geturl()


def _headers(ctx: DispatchContext) -> dict[str, str]:
    """The idempotency key and W3C trace context of one call, as HTTP headers."""
    meta = request_meta(ctx)
    key = meta.pop(IDEMPOTENCY_KEY, None)
    headers: dict[str, str] = {k: meta[k] for k in ("traceparent", "tracestate") if k in meta}
    if key:
        headers["Idempotency-Key"] = key
    return headers


def _service(endpoint: _Endpoint) -> str:
    return f"JSON-RPC service at {endpoint.shown}"


def _method(tool: ToolURI, endpoint: _Endpoint) -> str:
    return f"JSON-RPC method '{tool.tool}' at {endpoint.shown}"


def _parse(content: bytes, tool: ToolURI, endpoint: _Endpoint) -> Any:
    """A response body as JSON.

    Raises:
        TransportError: it is not JSON.
    """
    try:
        return json.loads(content)
    except ValueError:
        body = f"a body that is not JSON: {_quote(content)}" if content.strip() else "no body"
        raise TransportError(f"{_service(endpoint)} answered '{tool.tool}' with {body}") from None


def _output(answer: Any, tool: ToolURI, endpoint: _Endpoint, request_id: int) -> dict[str, Any]:
    """The step output of a JSON-RPC response (the module docstring's result mapping)."""
    if isinstance(answer, dict):
        error = answer.get("error")
        if error is not None and answer.get("id") in (request_id, None):
            raise _error_of(error, tool, endpoint, retryable=True)
        if "result" in answer and answer.get("id") == request_id:
            result = answer["result"]
            if isinstance(result, dict):
                return result
            return {"result": result}
    raise TransportError(
        f"{_service(endpoint)} answered '{tool.tool}' with something other than its "
        f"JSON-RPC 2.0 response (id {request_id}): {_quote(json.dumps(answer))}"
    )


def _refuse(
    status: int,
    reason: str | None,
    content: bytes,
    tool: ToolURI,
    endpoint: _Endpoint,
    request_id: int,
) -> NoReturn:
    """Raise the error a non-200 HTTP status stands for."""
    try:
        answer = json.loads(content)
    except ValueError:
        answer = None
    error = answer.get("error") if isinstance(answer, dict) else None
    detail = _quote(content) if content.strip() else "no body"
    http = f"HTTP {status}{f' {reason}' if reason else ''}"
    if status == 429 or status >= 500:
        because = _describe(error) if error is not None else detail
        raise TransportError(f"{_service(endpoint)} answered '{tool.tool}' with {http}: {because}")
    if error is not None:
        raise _error_of(error, tool, endpoint, retryable=False)
    if 300 <= status < 400:
        raise ToolError(
            f"{_service(endpoint)} answered '{tool.tool}' with {http} to another address; "
            "redirects are not followed, so use the final URL in the tool URI",
            retryable=False,
        )
    raise ToolError(
        f"{_service(endpoint)} refused '{tool.tool}' with {http}: {detail}", retryable=False
    )


def _error_of(error: Any, tool: ToolURI, endpoint: _Endpoint, *, retryable: bool) -> DispatchError:
    """The DispatchError a JSON-RPC error object maps to."""
    code = error.get("code") if isinstance(error, dict) else None
    message = f"{_method(tool, endpoint)} failed: {_describe(error)}"
    if code == _METHOD_NOT_FOUND:
        return ToolNotFoundError(message)
    if code == _INVALID_PARAMS:
        return ToolInputError(message)
    if code in (_PARSE_ERROR, _INVALID_REQUEST):
        retryable = False
    return ToolError(message, retryable=retryable)


def _describe(error: Any) -> str:
    """`<code> <message>[: <data>]` of a JSON-RPC error object."""
    if not isinstance(error, dict):
        return _quote(json.dumps(error))
    code = error.get("code")
    message = error.get("message")
    text = " ".join(str(part) for part in (code, message) if part is not None) or "no message"
    data = error.get("data")
    if data is not None:
        text += ": " + _quote(data if isinstance(data, str) else json.dumps(data))
    return text


def _quote(text: str | bytes) -> str:
    """At most `_QUOTE` characters of `text`, on one line."""
    if isinstance(text, bytes):
        text = text[: _QUOTE * 4].decode(errors="replace")
    text = " ".join(text.split())
    return text if len(text) <= _QUOTE else text[: _QUOTE - 1] + "…"


def _too_large(tool: ToolURI, endpoint: _Endpoint, limit: int) -> ToolError:
    return ToolError(
        f"{_service(endpoint)} answered '{tool.tool}' with more than {_size(limit)}, the "
        "largest response Sire reads (limits.max_payload_bytes in config.yaml)",
        retryable=False,
    )


def _size(count: int) -> str:
    if count >= 1024 * 1024 and count % (1024 * 1024) == 0:
        return f"{count // (1024 * 1024)} MiB"
    if count >= 1024 and count % 1024 == 0:
        return f"{count // 1024} KiB"
    return f"{count} bytes"


async def _read_some(response: ClientResponse, limit: int) -> bytes:
    """At most `limit + 1` bytes of the body: enough to tell that it is too large."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(chunks)[: limit + 1]


def _failure(exc: Exception, tool: ToolURI, endpoint: _Endpoint) -> DispatchError:
    """The DispatchError a failed request raises: always a TransportError."""
    import aiohttp

    uri = str(tool)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportError(f"cannot reach {_service(endpoint)}: {_os_reason(exc)}", tool_uri=uri)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return TransportError(
            f"{_service(endpoint)} closed the connection during '{tool.tool}'", tool_uri=uri
        )
    detail = str(exc) or type(exc).__name__
    return TransportError(
        f"call to '{tool.tool}' at {_service(endpoint)} failed: {detail}", tool_uri=uri
    )


def _os_reason(exc: Any) -> str:
    """Why a connection could not be made: `Connection refused`, not asyncio's wording."""
    error = getattr(exc, "os_error", None)
    if isinstance(error, OSError):
        if error.errno is not None and error.errno > 0:
            return os.strerror(error.errno)
        if error.strerror:
            return error.strerror
    return str(exc) or type(exc).__name__
