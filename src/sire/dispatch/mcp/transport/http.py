"""Streamable HTTP on one pooled, kept-alive aiohttp session per connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from mcp.client._transport import TransportStreams
from mcp.shared.inbound import MCP_PROTOCOL_VERSION_HEADER
from mcp.shared.message import ClientMessageMetadata, SessionMessage
from mcp_types import (
    CONNECTION_CLOSED,
    INTERNAL_ERROR,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    PARSE_ERROR,
    JSONRPCError,
    JSONRPCNotification,
    JSONRPCRequest,
    JSONRPCResponse,
    RequestId,
    jsonrpc_message_adapter,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError

from sire.dispatch.mcp.transport.streams import (
    ReadStream,
    WriteStream,
    error_message,
    parse_message,
)

log = logging.getLogger(__name__)

#: Bound on opening a TCP connection (reading a response is bounded by the call's deadline).
CONNECT_TIMEOUT = 30.0
#: Bound on the DELETE that ends a handshake-era session when the transport closes.
DELETE_TIMEOUT = 5.0
#: The SDK's SSE reconnection policy: its default delay and attempts without progress.
DEFAULT_RECONNECTION_DELAY = 1.0
MAX_RECONNECTION_ATTEMPTS = 2
MAX_SSE_EVENT_SIZE = 1024 * 1024
_MAX_REDIRECTS = 5
_SESSION_ID = "mcp-session-id"
_LAST_EVENT_ID = "last-event-id"
_ACCEPT = "application/json, text/event-stream"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@contextlib.asynccontextmanager
async def streamable_http(
    url: str, headers: Mapping[str, str] = {}, *, terminate_on_close: bool = True
) -> AsyncIterator[TransportStreams]:
    """The Streamable HTTP transport to `url`, sending `headers` with every request."""
    transport = _HttpTransport(url, headers)
    try:
        yield transport.read, transport.write
    finally:
        await transport.aclose(terminate_on_close)


class _HttpTransport:
    def __init__(self, url: str, headers: Mapping[str, str]) -> None:
        self.url = url
        self.read = ReadStream()
        self.write = WriteStream(self._send)
        self.session_id: str | None = None
        #: The negotiated MCP-Protocol-Version, as the session stamped it on its last request.
        self.protocol_version: str | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._http = aiohttp.ClientSession(
            headers=dict(headers),
            # No read timeout: every call is bounded by its deadline, and a slow tool may
            # stay silent on its response stream for longer than any fixed read timeout.
            timeout=aiohttp.ClientTimeout(total=None, connect=CONNECT_TIMEOUT),
            connector=_FreshConnector(limit=0),
        )

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": _ACCEPT, "Content-Type": "application/json"}
        if self.session_id:
            headers[_SESSION_ID] = self.session_id
        if self.protocol_version:
            headers[MCP_PROTOCOL_VERSION_HEADER] = self.protocol_version
        return headers

    @property
    def _modern(self) -> bool:
        return self.protocol_version in MODERN_PROTOCOL_VERSIONS

    async def _send(self, item: SessionMessage) -> None:
        message = item.message
        metadata = item.metadata if isinstance(item.metadata, ClientMessageMetadata) else None
        is_request = isinstance(message, JSONRPCRequest)
        if isinstance(message, JSONRPCNotification):
            if message.method == "notifications/cancelled" and self._modern:
                # The 2026 wire has no client notifications over HTTP: closing the
                # request's response stream (done when its caller was cancelled) is the
                # cancellation; the dispatcher's courtesy frame is dropped, as the SDK does.
                return
            if message.method == "notifications/initialized":
                self._spawn(self._listen(), "GET stream")
        if isinstance(message, JSONRPCRequest) and message.method == "initialize":
            self.protocol_version = None  # a probe's version must not leak onto the handshake
        elif metadata is not None and metadata.headers is not None:
            version = metadata.headers.get(MCP_PROTOCOL_VERSION_HEADER)
            if version is not None:
                self.protocol_version = version
        headers = self._headers()
        if metadata is not None and metadata.headers:
            headers.update(metadata.headers)
        if is_request:
            assert isinstance(message, JSONRPCRequest)
            headers.update(_trace_headers(message))
        if is_request and metadata is not None and metadata.resumption_token:
            assert isinstance(message, JSONRPCRequest)
            headers[_LAST_EVENT_ID] = metadata.resumption_token
            await self._resume(message.id, headers, metadata)
            return
        body = message.model_dump_json(by_alias=True, exclude_unset=True).encode()
        if not is_request:
            # Notifications and answers to server requests: the server acknowledges them
            # (202) and sends nothing back. Fire and forget, as the dispatcher expects.
            try:
                async with self._request("POST", body, headers) as response:
                    if response.status >= 400:
                        log.debug("sire.mcp.post_refused status=%d", response.status)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                log.debug("sire.mcp.post_failed error=%r", exc)
            return
        assert isinstance(message, JSONRPCRequest)
        try:
            async with self._request("POST", body, headers) as response:
                await self._answer(message, metadata, response)
        except TimeoutError as exc:
            # aiohttp's own (connecting): the caller's deadline arrives as a cancellation.
            raise aiohttp.ConnectionTimeoutError(f"connecting to {self.url} timed out") from exc

    @contextlib.asynccontextmanager
    async def _request(
        self, method: str, body: bytes | None, headers: dict[str, str]
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """One request to the endpoint, following redirects only within its origin.

        A response still unread when the block ends (its caller was cancelled) closes its
        connection: for a 2026-07-28 server that is how a request is cancelled.
        """
        url = self.url
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._http.request(
                method, url, data=body, headers=headers, allow_redirects=False
            )
            location = response.headers.get("Location")
            if response.status not in _REDIRECTS or location is None:
                break
            following = urljoin(url, location)
            if response.status not in (307, 308) and method == "POST":
                break  # it would turn into a GET without the message
            if not _within_origin(url, following):
                break
            response.release()
            url = following
        try:
            yield response
        finally:
            if response.content.at_eof():
                response.release()
            else:
                response.close()

    async def _answer(
        self,
        message: JSONRPCRequest,
        metadata: ClientMessageMetadata | None,
        response: aiohttp.ClientResponse,
    ) -> None:
        """Put the answer to request `message` on the read stream, from its POST's response."""
        status = response.status
        if status == 202:
            # A request's response comes on its POST; 202 says none will.
            self.read.put(
                error_message(
                    message.id, INVALID_REQUEST, "server answered a request with 202 Accepted"
                )
            )
            return
        if status in _REDIRECTS:
            location = response.headers.get("Location", "")
            self.read.put(
                error_message(
                    message.id,
                    INVALID_REQUEST,
                    f"Redirect to {location} not followed; use that URL as the endpoint "
                    "if it is the intended server",
                )
            )
            return
        content_type = response.headers.get("Content-Type", "").lower()
        if status >= 400:
            if content_type.startswith("application/json"):
                # A server may send the JSON-RPC error with a 4xx/5xx status.
                with contextlib.suppress(ValidationError, aiohttp.ClientError):
                    parsed = jsonrpc_message_adapter.validate_json(
                        await response.read(), by_name=False
                    )
                    if isinstance(parsed, JSONRPCError):
                        # The server may have said `id: null`; this request is the one.
                        reply = JSONRPCError(jsonrpc="2.0", id=message.id, error=parsed.error)
                        self.read.put(SessionMessage(reply))
                        return
            if status == 404:
                if self.session_id is None:
                    error = error_message(message.id, METHOD_NOT_FOUND, "Not Found")
                else:
                    error = error_message(message.id, INVALID_REQUEST, "Session terminated")
            else:
                error = error_message(
                    message.id, INTERNAL_ERROR, f"Server returned an error response ({status})"
                )
            self.read.put(error)
            return
        if message.method == "initialize" and (session_id := response.headers.get(_SESSION_ID)):
            self.session_id = session_id
        if content_type.startswith("application/json"):
            body = await response.read()
            parsed_message = parse_message(body)
            if isinstance(parsed_message, Exception):
                text = f"Failed to parse JSON response: {parsed_message}"
                self.read.put(error_message(message.id, PARSE_ERROR, text))
            else:
                self.read.put(parsed_message)
        elif content_type.startswith("text/event-stream"):
            await self._read_events(message.id, response, metadata)
        else:
            text = f"Unexpected content type: {content_type}"
            self.read.put(error_message(message.id, INVALID_REQUEST, text))

    async def _read_events(
        self,
        request_id: RequestId,
        response: aiohttp.ClientResponse,
        metadata: ClientMessageMetadata | None,
        attempts: int = 0,
    ) -> None:
        """Read the SSE stream answering request `request_id`, resuming it when it breaks."""
        stream = _EventStream()
        try:
            if await self._relay(stream, response, request_id, metadata):
                return
        except _SseError as exc:
            self.read.put(error_message(request_id, CONNECTION_CLOSED, f"SSE stream failed: {exc}"))
            return
        except (aiohttp.ClientError, OSError) as exc:
            log.debug("sire.mcp.sse_broken error=%r", exc)
        if stream.last_id is None:
            self.read.put(
                error_message(request_id, CONNECTION_CLOSED, "SSE stream ended without a response")
            )
            return
        # The server can resume this stream (it named its events): GET it from the last one.
        delay = DEFAULT_RECONNECTION_DELAY if stream.retry is None else stream.retry
        await asyncio.sleep(delay)
        headers = self._headers()
        headers[_LAST_EVENT_ID] = stream.last_id
        await self._resume(request_id, headers, metadata, attempts, retry=stream.retry)

    async def _resume(
        self,
        request_id: RequestId,
        headers: dict[str, str],
        metadata: ClientMessageMetadata | None,
        attempts: int = 0,
        retry: float | None = None,
    ) -> None:
        """GET a request's event stream from `Last-Event-ID`; an error answers it on failure."""
        last_id = headers[_LAST_EVENT_ID]
        while True:
            stream = _EventStream(last_id, retry)
            try:
                async with self._request("GET", None, headers) as response:
                    if response.status >= 400 or not response.headers.get(
                        "Content-Type", ""
                    ).startswith("text/event-stream"):
                        raise _SseError(f"resuming answered {response.status}")
                    if await self._relay(stream, response, request_id, metadata):
                        return
                    # A stream that delivered something ended: resume it on a new budget.
                    attempts = 0 if stream.progressed else attempts + 1
            except _SseError as exc:
                if stream.progressed:
                    self.read.put(
                        error_message(request_id, CONNECTION_CLOSED, f"SSE stream failed: {exc}")
                    )
                    return
                attempts += 1
            except (aiohttp.ClientError, OSError) as exc:
                log.debug("sire.mcp.sse_resume_failed error=%r", exc)
                attempts += 1
            if attempts >= MAX_RECONNECTION_ATTEMPTS:
                text = "SSE stream ended and reconnection attempts were exhausted"
                self.read.put(error_message(request_id, CONNECTION_CLOSED, text))
                return
            last_id, retry = stream.last_id or last_id, stream.retry
            headers = {**headers, _LAST_EVENT_ID: last_id}
            await asyncio.sleep(DEFAULT_RECONNECTION_DELAY if retry is None else retry)

    async def _relay(
        self,
        stream: _EventStream,
        response: aiohttp.ClientResponse,
        request_id: RequestId | None,
        metadata: ClientMessageMetadata | None,
    ) -> bool:
        """Put the messages of an SSE stream on the read stream; True once it answered."""
        on_token = metadata.on_resumption_token_update if metadata is not None else None
        async for event in stream.events(response.content):
            if event.data:
                parsed = parse_message(event.data)
                if isinstance(parsed, Exception):
                    if request_id is not None:
                        text = f"Failed to parse SSE message: {parsed}"
                        self.read.put(error_message(request_id, PARSE_ERROR, text))
                        return True
                    self.read.put(parsed)
                    continue
                answered = isinstance(parsed.message, JSONRPCResponse | JSONRPCError)
                if answered and request_id is not None:
                    parsed.message.id = request_id  # type: ignore[union-attr]
                self.read.put(parsed)
                if event.id is not None and on_token is not None:
                    await on_token(event.id)
                if answered and request_id is not None:
                    return True
            elif event.id is not None and on_token is not None:
                await on_token(event.id)  # a priming event: where to resume from
        return False

    async def _listen(self) -> None:
        """The GET stream for server-initiated messages (handshake era), reconnected."""
        stream = _EventStream()
        attempts = 0
        while self.session_id and attempts < MAX_RECONNECTION_ATTEMPTS:
            headers = self._headers()
            if stream.last_id is not None:
                headers[_LAST_EVENT_ID] = stream.last_id
            try:
                async with self._request("GET", None, headers) as response:
                    if response.status == 405:
                        return  # the server offers no such stream
                    if response.status >= 400:
                        raise _SseError(f"answered {response.status}")
                    if not response.headers.get("Content-Type", "").startswith("text/event-stream"):
                        return
                    await self._relay(stream, response, None, None)
                    attempts = 0 if stream.progressed else attempts + 1
            except (_SseError, aiohttp.ClientError, OSError) as exc:
                log.debug("sire.mcp.get_stream_failed error=%r", exc)
                attempts += 1
            retry = DEFAULT_RECONNECTION_DELAY if stream.retry is None else stream.retry
            await asyncio.sleep(retry)

    def _spawn(self, coroutine: Awaitable[None], name: str) -> None:
        async def run() -> None:
            await coroutine

        task = asyncio.create_task(run(), name=f"sire.mcp {name} {self.url}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self, terminate: bool) -> None:
        self.read.end()
        self.write.closed = True
        for task in list(self._tasks):
            task.cancel()
        try:
            if self.session_id and terminate:
                with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
                    async with asyncio.timeout(DELETE_TIMEOUT):
                        async with self._request("DELETE", None, self._headers()) as response:
                            if response.status not in (200, 202, 204, 405):
                                log.debug("sire.mcp.delete_refused status=%d", response.status)
        finally:
            # Also ends the requests still in flight: their callers see the connection close.
            await self._http.close()
            if self._tasks:
                await asyncio.wait(self._tasks, timeout=1.0)


class _FreshConnector(aiohttp.TCPConnector):
    """A pool that never hands out a kept-alive connection its server has closed.

    The event loop learns of the close only when it next polls, which a call made right
    after (a server restarted while the loop was busy) can precede: the request would
    fail although nothing had reached the server. As httpcore does, a pooled connection
    with something to read while idle (its EOF) is dropped before it is used.
    """

    async def connect(
        self,
        req: aiohttp.ClientRequest,
        traces: list[Any],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's signature
    ) -> Any:
        while True:
            connection = await super().connect(req, traces, timeout)
            if not _readable(connection.transport):
                return connection
            connection.close()


def _readable(transport: asyncio.Transport | None) -> bool:
    """Whether an idle connection has data or EOF waiting (or is gone): it cannot be used."""
    if transport is None or transport.is_closing():
        return True
    sock = transport.get_extra_info("socket")
    if sock is None:
        return False
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def _trace_headers(message: JSONRPCRequest) -> dict[str, str]:
    """The W3C trace context of a request's `_meta`, as HTTP headers.

    A server (or a proxy in front of it) that traces by header joins the trace as one
    reading `_meta` does.
    """
    meta = message.params.get("_meta") if message.params else None
    if not isinstance(meta, dict):
        return {}
    return {
        name: value
        for name in ("traceparent", "tracestate")
        if isinstance(value := meta.get(name), str)
    }


def _within_origin(url: str, location: str) -> bool:
    """Whether `location` is on `url`'s origin, or its https upgrade (the SDK's rule)."""
    a, b = urlsplit(url), urlsplit(location)
    if (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port):
        return True
    return (
        a.hostname == b.hostname
        and (a.scheme, b.scheme) == ("http", "https")
        and a.port is None
        and b.port is None
    )


class _SseError(Exception):
    """An SSE stream that cannot be read (an event too large, a refused resumption)."""


class _Event:
    __slots__ = ("data", "id")

    def __init__(self, data: str, event_id: str | None) -> None:
        self.data = data
        self.id = event_id


class _EventStream:
    """Server-sent events parsed from a response body, with the resumption state they set."""

    def __init__(self, last_id: str | None = None, retry: float | None = None) -> None:
        self.last_id = last_id
        self.retry = retry
        self.progressed = False

    async def events(self, content: aiohttp.StreamReader) -> AsyncIterator[_Event]:
        data: list[str] = []
        size = 0
        kind = ""
        event_id: str | None = None
        while True:
            raw = await content.readline()
            if not raw:
                return  # end of stream; an unfinished event is dropped (the SSE rule)
            line = raw.decode().rstrip("\r\n")
            if not line:
                if event_id is not None:
                    self.last_id = event_id
                if data and kind in ("", "message"):
                    self.progressed = True
                    yield _Event("\n".join(data), event_id)
                elif event_id is not None:
                    self.progressed = True
                    yield _Event("", event_id)
                data, size, kind, event_id = [], 0, "", None
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                size += len(value)
                if size > MAX_SSE_EVENT_SIZE:
                    raise _SseError(f"an event is larger than {MAX_SSE_EVENT_SIZE} bytes")
                data.append(value)
            elif name == "id":
                if "\0" not in value:
                    event_id = value
            elif name == "event":
                kind = value
            elif name == "retry" and value.isdigit():
                self.retry = int(value) / 1000
