"""Live MCP sessions: one per endpoint, opened lazily, shared by concurrent calls, reopened.

Above: `RemoteDispatcher`, which asks `Session.connection()` for a live `Connection` and
calls tools on its SDK client from any task. Below: the official MCP SDK's `mcp.Client`
over Sire's own transports (`sire.dispatch.mcp.transport`: Streamable HTTP on aiohttp, or
a stdio process on asyncio pipes), or over the SDK's own (httpx2, anyio) when
`SIRE_MCP_TRANSPORT=sdk`, to compare them; the SDK negotiates the protocol era
(`server/discover` for 2026-07-28 servers, else the `initialize` handshake).
The SDK takes over a second to import, so it is imported on the first connect, in a
worker thread, and never by `import sire.dispatch.remote`.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TextIO

from sire.dispatch.dispatcher import LogCallback
from sire.dispatch.mcp.endpoint import Endpoint
from sire.dispatch.mcp.mapping import Validator

if TYPE_CHECKING:
    from mcp import Client
    from mcp.client._transport import TransportStreams
    from mcp.shared._stream_protocols import ReadStream
    from mcp.shared.message import SessionMessage
    from mcp_types import LoggingMessageNotificationParams, Tool

log = logging.getLogger(__name__)

#: Bound on starting a server and listing its tools.
CONNECT_TIMEOUT = 30.0
#: Bound on closing a session: the SDK gives a stdio server 2 s after stdin closes and
#: 2 s after SIGTERM before SIGKILL.
CLOSE_TIMEOUT = 10.0
_STDERR_KEEP_BYTES = 8192
_STDERR_TAIL_LINES = 8
_STDERR_TAIL_CHARS = 600
#: How long to wait for a stopped server's last stderr bytes.
_STDERR_EOF_WAIT = 1.0
_MAX_TOOL_PAGES = 100
_CONNECTION_CLOSED = -32000  # the SDK's code when the transport ends

_sdk_loaded = False


async def load_sdk() -> None:
    """Import the MCP SDK once, off the event loop (it takes over a second)."""
    global _sdk_loaded
    if not _sdk_loaded:
        await asyncio.to_thread(importlib.import_module, "mcp")
        _sdk_loaded = True


class ConnectError(Exception):
    """A session could not be opened; the message says why, without the server's name."""


class Connection:
    """One connected SDK client and the tools it listed; it ends once and is never revived.

    An owner task enters the SDK client and holds it open until `close()` or until its
    transport ends (the process exits, the stream breaks): the SDK's anyio scopes must be
    entered and left by one task, while calls may come from any task.

    Attributes:
        client: the SDK client, once `ready` is done without error.
        tools: the tools the server listed, by name.
        validators: compiled `inputSchema` validators by tool name (None: not checkable).
        ready: done when connected and listed; its exception is a `ConnectError`.
        lost: set when the connection can no longer be used.
        listeners: the log callbacks of the calls in flight that keep step logs: each
            `notifications/message`, and each line of a stdio server's stderr, goes to
            every one of them (`listen`).
    """

    def __init__(self, endpoint: Endpoint, connect_timeout: float) -> None:
        self.endpoint = endpoint
        self.client: Client | None = None
        self.tools: dict[str, Tool] = {}
        self.validators: dict[str, Validator | None] = {}
        self.loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = self.loop.create_future()
        self.ready.add_done_callback(_retrieve)
        self.lost = asyncio.Event()
        self.failure: Exception | None = None
        self._connect_timeout = connect_timeout
        self._stderr: _StderrTail | None = None
        self.listeners: list[LogCallback] = []
        self._sdk_transport = os.environ.get("SIRE_MCP_TRANSPORT", "").lower() == "sdk"
        self.task = asyncio.create_task(self._run(), name=f"sire.mcp {endpoint.describe()}")

    @property
    def alive(self) -> bool:
        return not self.lost.is_set()

    def close(self) -> None:
        """End the connection; calls still in flight fail as closed."""
        self.lost.set()

    @contextlib.contextmanager
    def listen(self, log: LogCallback) -> Iterator[None]:
        """Send the server's log lines to `log` while the block (one call) runs.

        MCP log notifications carry no request id, and stderr none either: a line goes to
        every call in flight on this connection that listens, which is exact while one
        call runs at a time.
        """
        self.listeners.append(log)
        try:
            yield
        finally:
            self.listeners.remove(log)

    async def _on_log(self, params: LoggingMessageNotificationParams) -> None:
        """The SDK's logging callback: a `notifications/message` to the listening calls."""
        if not self.listeners:
            return
        data = params.data
        message = data if isinstance(data, str) else json.dumps(data, default=str)
        for listener in list(self.listeners):
            listener(params.level, message, params.logger)

    def _on_stderr(self, line: str) -> None:
        """A line of a stdio server's stderr, to the listening calls."""
        for listener in list(self.listeners):
            listener("info", line, "stderr")

    async def reason(self, wait: float) -> str:
        """Why the connection ended, in words, waiting up to `wait` s for it to wind down."""
        await asyncio.wait({self.task}, timeout=wait)
        parts = []
        if self.failure is not None:
            parts.append(describe_exception(self.failure))
        if self._stderr is not None and (tail := self._stderr.tail()):
            parts.append(f"its stderr ends with: {tail}")
        return "; ".join(parts)

    async def _run(self) -> None:
        try:
            await load_sdk()
            async with contextlib.AsyncExitStack() as stack:
                await self._connect(stack)
                self.ready.set_result(None)
                await self.lost.wait()
        except Exception as exc:
            self.failure = exc
            if not self.ready.done():
                message = await self._connect_failure(exc)
                self.ready.set_exception(ConnectError(message))
            else:
                log.info(
                    "sire.mcp.session_failed endpoint=%s error=%s",
                    self.endpoint.describe(),
                    describe_exception(exc),
                )
        finally:
            self.lost.set()
            if not self.ready.done():
                self.ready.set_exception(ConnectError("the connection attempt was cancelled"))
            if self._stderr is not None:
                await self._stderr.aclose(_STDERR_EOF_WAIT)

    async def _connect(self, stack: contextlib.AsyncExitStack) -> None:
        from mcp import Client
        from mcp_types import Implementation

        from sire import __version__

        errlog: TextIO | None = None
        if self.endpoint.is_stdio:
            self._stderr, errlog = await _StderrTail.open(self.endpoint.describe())
            self._stderr.on_line = self._on_stderr
        client = Client(
            _transport(self.endpoint, errlog, self.lost, sdk=self._sdk_transport),
            mode="auto",
            client_info=Implementation(name="sire", version=__version__),
            cache=None,
            logging_callback=self._on_log,
        )
        try:
            # asyncio's timeout, not anyio's: a cancel scope may not close while the
            # client's own scopes, opened inside it, stay open.
            async with asyncio.timeout(self._connect_timeout):
                await stack.enter_async_context(client)
                if errlog is not None:
                    errlog.close()  # the server holds its own copy: EOF comes when it exits
                cursor: str | None = None
                for _ in range(_MAX_TOOL_PAGES):
                    page = await client.list_tools(cursor=cursor)
                    self.tools.update((tool.name, tool) for tool in page.tools)
                    cursor = page.next_cursor
                    if cursor is None:
                        break
        finally:
            if errlog is not None:
                errlog.close()
        self.client = client
        log.debug(
            "sire.mcp.connected endpoint=%s protocol=%s tools=%d",
            self.endpoint.describe(),
            client.protocol_version,
            len(self.tools),
        )

    async def _connect_failure(self, exc: Exception) -> str:
        """A connect error in words; for a stdio server, with the tail of its stderr."""
        if isinstance(exc, ImportError):
            return f"cannot be used: the MCP SDK ('mcp' 2.x) is not installed ({exc})"
        if isinstance(exc, TimeoutError):
            what = "start and list its tools" if self.endpoint.is_stdio else "list its tools"
            return f"did not {what} within {self._connect_timeout:g} s"
        if self.endpoint.is_stdio:
            program = self.endpoint.command[0] if self.endpoint.command else ""
            cause = innermost(exc)
            if isinstance(cause, FileNotFoundError | PermissionError):
                where = f" in {self.endpoint.cwd}" if self.endpoint.cwd else ""
                return f"could not start '{program}'{where}: {cause.strerror or cause}"
            tail = ""
            if self._stderr is not None:
                await self._stderr.wait_eof(_STDERR_EOF_WAIT)
                tail = self._stderr.tail()
            said = f"; its stderr ends with: {tail}" if tail else "; it wrote nothing on stderr"
            if getattr(cause, "code", None) == _CONNECTION_CLOSED:
                return f"exited before completing the MCP handshake{said}"
            return f"failed the MCP handshake ({describe_exception(exc)}){said}"
        return f"could not be reached: {describe_exception(exc)}"


class Session:
    """The live connection to one endpoint, (re)opened on demand and shared by all calls."""

    def __init__(self, endpoint: Endpoint, connect_timeout: float = CONNECT_TIMEOUT) -> None:
        self.endpoint = endpoint
        self._connect_timeout = connect_timeout
        self._current: Connection | None = None
        self._retiring: set[Connection] = set()

    async def connection(self) -> Connection:
        """A live connection, opening one when there is none; concurrent callers share it.

        The wait is bounded by the connect timeout; callers add their own deadline.

        Raises:
            ConnectError: the server could not be started or reached.
        """
        conn = self._current
        if conn is not None and conn.loop is not asyncio.get_running_loop():
            conn = self._current = None  # its event loop is gone, and its process with it
        if conn is None or not conn.alive:
            if conn is not None:
                self._retire(conn)
            conn = self._current = Connection(self.endpoint, self._connect_timeout)
        if not conn.ready.done():
            await asyncio.shield(conn.ready)
        else:
            conn.ready.result()
        return conn

    def _retire(self, conn: Connection) -> None:
        """Keep an ended connection's owner task until it has wound down (for `aclose`)."""
        conn.close()
        if not conn.task.done():
            self._retiring.add(conn)
            conn.task.add_done_callback(lambda _: self._retiring.discard(conn))

    async def aclose(self) -> None:
        """Close every connection and stop its process, each within `CLOSE_TIMEOUT`."""
        conns = [*self._retiring, *([self._current] if self._current else [])]
        self._current = None
        for conn in conns:
            conn.close()
        tasks = {conn.task for conn in conns if not conn.task.done()}
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=CLOSE_TIMEOUT)
        for task in pending:
            log.warning("sire.mcp.close_timeout endpoint=%s", self.endpoint.describe())
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=CLOSE_TIMEOUT)


def innermost(exc: BaseException) -> BaseException:
    """The first meaningful error inside `exc`: task groups nest them in groups."""
    while isinstance(exc, BaseExceptionGroup):
        leaves = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (leaves or list(exc.exceptions))[0]
    return exc


def describe_exception(exc: BaseException) -> str:
    """The innermost meaningful error of `exc`, as `Type: message`."""
    exc = innermost(exc)
    text = str(exc).strip().partition("\n")[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a connect error as seen: nobody may be waiting when a connect fails."""
    if not future.cancelled():
        future.exception()


@contextlib.asynccontextmanager
async def _transport(
    endpoint: Endpoint, errlog: TextIO | None, lost: asyncio.Event, *, sdk: bool
) -> AsyncIterator[TransportStreams]:
    """The transport for `endpoint`, whose read stream sets `lost` when it ends.

    Sire's own, unless `sdk` (`SIRE_MCP_TRANSPORT=sdk` when the connection was made) asks
    for the SDK's, for comparison.
    """
    if sdk:
        async with _sdk_transport(endpoint, errlog) as streams:
            yield _WatchedReadStream(streams[0], lost), streams[1]
        return
    from sire.dispatch.mcp import transport

    if endpoint.url is not None:
        async with transport.streamable_http(endpoint.url, dict(endpoint.headers)) as streams:
            yield _WatchedReadStream(streams[0], lost), streams[1]
    else:
        env = dict(endpoint.env) or None
        async with transport.stdio(endpoint.command, env, endpoint.cwd, errlog) as streams:
            yield _WatchedReadStream(streams[0], lost), streams[1]


@contextlib.asynccontextmanager
async def _sdk_transport(
    endpoint: Endpoint, errlog: TextIO | None
) -> AsyncIterator[TransportStreams]:
    """The SDK's own transport for `endpoint`."""
    if endpoint.url is not None:
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        # No read timeout: every call is bounded by its deadline, and a slow tool may
        # stay silent on its response stream for longer than any fixed read timeout.
        http = httpx2.AsyncClient(
            headers=dict(endpoint.headers), timeout=httpx2.Timeout(CONNECT_TIMEOUT, read=None)
        )
        async with http, streamable_http_client(endpoint.url, http_client=http) as streams:
            yield streams
    else:
        import sys

        from mcp.client.stdio import StdioServerParameters, stdio_client

        params = StdioServerParameters(
            command=endpoint.command[0],
            args=list(endpoint.command[1:]),
            env=dict(endpoint.env) or None,
            cwd=endpoint.cwd,
        )
        async with stdio_client(params, errlog=errlog or sys.stderr) as streams:
            yield streams


class _WatchedReadStream:
    """A transport's read stream that sets `lost` when the server side ends it.

    The SDK notices a dead stdio server only when a request fails; watching the stream
    lets the next call start a new server instead of failing first.
    """

    def __init__(self, stream: ReadStream[SessionMessage | Exception], lost: asyncio.Event):
        self._stream = stream
        self._lost = lost

    @property
    def last_context(self) -> Any:
        # The SDK's dispatcher reads the sender's context this way (HTTP transports).
        return getattr(self._stream, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            return await self._stream.receive()
        except Exception:
            self._lost.set()
            raise

    async def aclose(self) -> None:
        await self._stream.aclose()

    def __aiter__(self) -> _WatchedReadStream:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self._stream.__anext__()
        except (StopAsyncIteration, Exception):
            self._lost.set()
            raise

    async def __aenter__(self) -> _WatchedReadStream:
        await self._stream.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        self._lost.set()
        return await self._stream.__aexit__(exc_type, exc_val, exc_tb)


class _StderrTail(asyncio.Protocol):
    """A stdio server's stderr: the last few kilobytes kept for error messages, all logged.

    Read through a pipe on the event loop, so the server never blocks on a full pipe and
    its output never lands on Sire's own terminal.
    """

    def __init__(self, label: str) -> None:
        self._label = label
        self._data = bytearray()
        self._line = bytearray()  # the last line's start, until its newline comes
        #: called with each complete line (a step's log while a call is in flight)
        self.on_line: Callable[[str], None] | None = None
        self._eof = asyncio.Event()
        self._transport: asyncio.BaseTransport | None = None

    @classmethod
    async def open(cls, label: str) -> tuple[_StderrTail, TextIO]:
        """A reader and the write end of its pipe, to hand to the server process."""
        read_fd, write_fd = os.pipe()
        try:
            reader = os.fdopen(read_fd, "rb", buffering=0)
        except BaseException:
            os.close(read_fd)
            os.close(write_fd)
            raise
        writer = os.fdopen(write_fd, "w")
        try:
            transport, tail = await asyncio.get_running_loop().connect_read_pipe(
                lambda: cls(label), reader
            )
        except BaseException:
            reader.close()
            writer.close()
            raise
        tail._transport = transport
        return tail, writer

    def data_received(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > _STDERR_KEEP_BYTES:
            del self._data[: len(self._data) - _STDERR_KEEP_BYTES]
        if log.isEnabledFor(logging.DEBUG):
            text = data.decode(errors="replace").rstrip()
            log.debug("sire.mcp.server_stderr endpoint=%s text=%s", self._label, text)
        if self.on_line is not None:
            self._line += data
            *lines, rest = self._line.split(b"\n")
            self._line = rest if len(rest) <= _STDERR_KEEP_BYTES else rest[-_STDERR_KEEP_BYTES:]
            for line in lines:
                text = line.decode(errors="replace").rstrip()
                if text:
                    self.on_line(text)

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof.set()

    async def wait_eof(self, within: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._eof.wait(), within)

    async def aclose(self, within: float) -> None:
        """Read what is left (bounded: the server's children may hold the pipe), then close."""
        await self.wait_eof(within)
        if self._transport is not None:
            self._transport.close()

    def tail(self) -> str:
        """The last lines written, on one line (`|` between them), at most a few hundred chars."""
        lines = [line.strip() for line in self._data.decode(errors="replace").splitlines()]
        text = " | ".join([line for line in lines if line][-_STDERR_TAIL_LINES:])
        return text if len(text) <= _STDERR_TAIL_CHARS else "…" + text[-_STDERR_TAIL_CHARS:]
