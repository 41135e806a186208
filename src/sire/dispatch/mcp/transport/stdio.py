"""stdio: a server process on asyncio pipes, newline-delimited JSON-RPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping
from typing import IO, Any

import anyio
from mcp.client._transport import TransportStreams
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage

from sire.dispatch.mcp.transport.streams import ReadStream, WriteStream, parse_message

log = logging.getLogger(__name__)

#: The SDK's stdio shutdown: stdin closed, then SIGTERM, then SIGKILL, each after this.
PROCESS_TERMINATION_TIMEOUT = 2.0
FORCE_KILL_TIMEOUT = 2.0
_GROUP_POLL = 0.01
_WRITE_BUFFER_HIGH = 1 << 20


#: Variables a server needs to reach the network the way Sire does (TLS roots, proxies),
#: passed on beside the SDK's default environment (HOME, PATH, ...): without them an
#: `npx` server behind a TLS-inspecting proxy fails its install.
_NETWORK_ENV = (
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "npm_config_cache",
    "npm_config_registry",
)


def server_environment(env: Mapping[str, str] | None) -> dict[str, str]:
    """A stdio server's environment: the SDK's defaults, network settings, then `env`.

    Sire's own secrets and configuration (`SIRE_*`, the rest of its environment) are not
    passed on; a server gets what its definition's `env` gives it.
    """
    inherited = {name: os.environ[name] for name in _NETWORK_ENV if name in os.environ}
    return get_default_environment() | inherited | dict(env or {})


@contextlib.asynccontextmanager
async def stdio(
    command: tuple[str, ...],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    errlog: IO[Any] | None = None,
) -> AsyncIterator[TransportStreams]:
    """A server process started from `command`, speaking newline-delimited JSON-RPC.

    It runs in its own process group, with the SDK's small default environment plus
    `env`, and its stderr on `errlog` (inherited when None).

    Raises:
        OSError: the command could not be started.
    """
    loop = asyncio.get_running_loop()
    read = ReadStream()
    process, protocol = await loop.subprocess_exec(
        lambda: _StdioProtocol(read),
        *command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
        env=server_environment(env),
        cwd=cwd,
        start_new_session=True,
    )
    write = WriteStream(protocol.send)
    try:
        yield read, write
    finally:
        write.closed = True
        await protocol.stop(process)


class _StdioProtocol(asyncio.SubprocessProtocol):
    def __init__(self, read: ReadStream) -> None:
        self._read = read
        self._buffer = b""
        self._stdin: asyncio.WriteTransport | None = None
        self._exited = asyncio.Event()
        self._drained: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        stdin = transport.get_pipe_transport(0)
        assert isinstance(stdin, asyncio.WriteTransport)
        stdin.set_write_buffer_limits(high=_WRITE_BUFFER_HIGH)
        self._stdin = stdin

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd != 1:
            return
        lines = (self._buffer + data).split(b"\n")
        self._buffer = lines.pop()
        for line in lines:
            if line.strip():
                self._read.put(parse_message(line))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self._read.end()  # the server is gone (or closed its stdout): the session ends
        elif fd == 0:
            self._wake_writer()

    def process_exited(self) -> None:
        self._exited.set()

    def pause_writing(self) -> None:
        if self._drained is None:
            self._drained = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._wake_writer()

    def _wake_writer(self) -> None:
        if self._drained is not None:
            if not self._drained.done():
                self._drained.set_result(None)
            self._drained = None

    async def send(self, item: SessionMessage) -> None:
        stdin = self._stdin
        if stdin is None or stdin.is_closing():
            raise anyio.BrokenResourceError
        json = item.message.model_dump_json(by_alias=True, exclude_unset=True)
        stdin.write(json.encode() + b"\n")
        while self._drained is not None and not stdin.is_closing():
            await asyncio.shield(self._drained)

    async def stop(self, process: asyncio.SubprocessTransport) -> None:
        """Close stdin and wait; then SIGTERM its process group, wait, and SIGKILL it.

        The SDK's sequence and bounds. Cancelled midway, it kills the group at once, so
        no server outlives its session.
        """
        pgid = process.get_pid()  # its own group's id (start_new_session)
        stopped = False
        try:
            if self._stdin is not None:
                self._stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exited.wait(), PROCESS_TERMINATION_TIMEOUT)
            if self._exited.is_set():
                stopped = True
                return
            _signal_group(pgid, signal.SIGTERM)
            # The group's end has no event to wait on: poll it, as the SDK does.
            for _ in range(int(FORCE_KILL_TIMEOUT / _GROUP_POLL)):
                if not _group_alive(pgid):
                    break
                await asyncio.sleep(_GROUP_POLL)
        finally:
            if not stopped:
                _signal_group(pgid, signal.SIGKILL)
            process.close()
            self._read.end()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # members we may not signal, or zombies: not proof that it is gone
    return True
