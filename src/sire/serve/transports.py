"""How `sire mcp serve` listens and stops: stdio, or Streamable HTTP at `/mcp` with uvicorn.

Above: the `sire mcp serve` command. Below: `sire.serve.protocol`. `bind` takes the port
before anything heavy is imported, so a port in use fails at once; `serve` then loads the
SDK, says on stderr that it is ready (one line; stdout carries only the protocol on
stdio), and serves until stdin closes (stdio) or SIGINT / SIGTERM arrives. Both protocol
eras are served as the SDK serves them: the stateless 2026-07-28 era and the 2025-11-25
`initialize` handshake (sessions, over HTTP). For a localhost bind the SDK's DNS-rebinding
protection stays on (the Host and Origin headers must name localhost).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from sire.errors import ConfigError, InputError
from sire.serve.catalog import Catalog
from sire.serve.workflows import WorkflowRunner

log = logging.getLogger(__name__)

#: The HTTP path of the MCP endpoint.
MCP_PATH = "/mcp"
#: How long a stopping HTTP server waits for open requests and streams.
GRACEFUL_SHUTDOWN = 3.0
#: The longest stdio message read when no limit is given.
DEFAULT_MAX_LINE = 16 * 1024 * 1024
_BACKLOG = 2048


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `host`:`port` (port 0: any free port).

    Raises:
        InputError: `host` cannot be resolved.
        ConfigError: the port is in use, or binding it is not allowed.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"--host {host}: cannot resolve it ({reason})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        where = f"{host}:{port}"
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"cannot serve on {where}: the port is already in use "
                "(stop whatever holds it, or choose another --port)"
            ) from None
        raise ConfigError(f"cannot serve on {where}: {exc.strerror or exc}") from None
    sock.setblocking(False)
    return sock


def http_url(host: str, sock: socket.socket) -> str:
    """The URL of the MCP endpoint served on `sock`."""
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{MCP_PATH}"


async def serve(
    catalog: Catalog,
    runner: WorkflowRunner | None,
    *,
    sock: socket.socket | None = None,
    host: str = "127.0.0.1",
    max_body_bytes: int | None = None,
) -> None:
    """Serve `catalog` over stdio (`sock` None) or Streamable HTTP on `sock`, until stopped.

    Raises:
        StoreError: the store of the workflows' executions cannot be opened.
    """
    from sire.serve.protocol import build_server

    try:
        if runner is not None:
            await runner.open()
        server = build_server(catalog)
        count = len(catalog)

        def ready(where: str) -> None:
            print(f"sire: serving MCP on {where} ({count} tools)", file=sys.stderr, flush=True)

        stopping = _Stopping(runner)
        if sock is None:
            await _serve_stdio(server, stopping, ready, max_body_bytes or DEFAULT_MAX_LINE)
        else:
            await _serve_http(server, stopping, ready, sock, host, max_body_bytes)
    finally:
        if runner is not None:
            await runner.aclose()


class _Stopping:
    """What SIGINT / SIGTERM do: interrupt the workflows' executions (resumable), then `stop`."""

    def __init__(self, runner: WorkflowRunner | None) -> None:
        self.runner = runner
        self.requested = False

    @contextlib.contextmanager
    def on_signals(self, stop: Callable[[], None]) -> Iterator[None]:
        loop = asyncio.get_running_loop()

        def handle() -> None:
            self.requested = True
            if self.runner is not None:
                self.runner.interrupt()  # executions stay resumable, not cancelled
            stop()

        signals = (signal.SIGINT, signal.SIGTERM)
        for signum in signals:
            loop.add_signal_handler(signum, handle)
        try:
            yield
        finally:
            for signum in signals:
                loop.remove_signal_handler(signum)


async def _serve_stdio(
    server: Any, stopping: _Stopping, ready: Callable[[str], None], max_line_bytes: int
) -> None:
    from mcp.server.stdio import stdio_server

    task = asyncio.current_task()
    assert task is not None

    def stop() -> None:
        task.cancel()

    try:
        with stopping.on_signals(stop):
            async with _wire_lines(max_line_bytes) as lines, stdio_server(lines) as (read, write):
                ready("stdio")
                await server.run(read, write, server.create_initialization_options())
    except asyncio.CancelledError:
        if not stopping.requested:
            raise
        task.uncancel()


async def _serve_http(
    server: Any,
    stopping: _Stopping,
    ready: Callable[[str], None],
    sock: socket.socket,
    host: str,
    max_body_bytes: int | None,
) -> None:
    import uvicorn

    options: dict[str, Any] = {"host": host}
    if max_body_bytes is not None:
        options["max_request_body_size"] = max_body_bytes
    app = server.streamable_http_app(**options)
    url = http_url(host, sock)

    class Uvicorn(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # Sire handles SIGINT / SIGTERM itself, and exits 0 on them

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                ready(url)

    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=int(GRACEFUL_SHUTDOWN),
    )
    web = Uvicorn(config)

    def stop() -> None:
        web.should_exit = True

    with stopping.on_signals(stop):
        await web.serve(sockets=[sock])


@contextlib.asynccontextmanager
async def _wire_lines(limit: int) -> AsyncIterator[Any]:
    """Stdin's lines read on the event loop, with fd 0 pointed at /dev/null meanwhile.

    The SDK reads stdin in a worker thread, which a signal cannot interrupt: a server
    stopped while its client keeps stdin open would hang. A pipe or socket is read here
    instead (cancellable), and fd 0 is diverted as the SDK would divert it, so tools'
    child processes read EOF rather than the protocol. Anything else (a terminal, a
    file) yields None: the SDK's own reader then, which leaves a terminal's mode alone.
    """
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        mode = 0
    if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
        yield None
        return
    saved = os.dup(0)
    wire = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    transport: asyncio.BaseTransport | None = None
    try:
        reader = asyncio.StreamReader(limit=limit)
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(wire, "rb", buffering=0)
        )
        yield _Lines(reader, limit)
    finally:
        if transport is not None:
            transport.close()
        else:
            os.close(wire)
        os.dup2(saved, 0)
        os.close(saved)


class _Lines:
    """The lines of a stream as text; a line over the limit is dropped and reads as `""`.

    An empty line is not JSON, so the SDK treats it as any malformed message.
    """

    def __init__(self, reader: asyncio.StreamReader, limit: int) -> None:
        self._reader = reader
        self._limit = limit

    def __aiter__(self) -> _Lines:
        return self

    async def __anext__(self) -> str:
        dropping = False
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:  # end of input
                if exc.partial and not dropping:
                    return exc.partial.decode("utf-8", errors="replace")
                raise StopAsyncIteration from None
            except asyncio.LimitOverrunError as exc:
                await self._reader.readexactly(exc.consumed)
                if not dropping:
                    log.warning("sire.serve.message_too_long limit=%d", self._limit)
                dropping = True
                continue
            return "" if dropping else line.decode("utf-8", errors="replace")
