"""RemoteDispatcher when servers are missing, crash, die, time out or answer 5xx."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sire.dispatch.remote import RemoteDispatcher
from sire.errors import ToolNotFoundError, TransportError
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

from .conftest import HANDSHAKE, MODERN, call, free_port, http_server, sdk_http_argv, sdk_stdio


async def test_a_missing_command_is_a_transport_error_naming_the_server(
    remote: RemoteDispatcher,
) -> None:
    ghost = ServerSpec(command=("sire-test-no-such-command", "--stdio"))
    with pytest.raises(TransportError) as caught:
        await call(remote, ghost, "add")
    message = str(caught.value)
    assert "MCP server 'sdk'" in message
    assert "could not start 'sire-test-no-such-command'" in message
    assert "No such file or directory" in message


async def test_a_server_that_crashes_at_start_reports_the_tail_of_its_stderr(
    remote: RemoteDispatcher,
) -> None:
    script = "import sys; print('loading config', file=sys.stderr); sys.exit('bad key: port')"
    crashing = ServerSpec(command=(sys.executable, "-c", script))
    with pytest.raises(TransportError) as caught:
        await call(remote, crashing, "add")
    message = str(caught.value)
    assert message.startswith("MCP server 'sdk' exited before completing the MCP handshake")
    assert "loading config | bad key: port" in message
    assert caught.value.retryable


async def test_a_server_that_never_answers_fails_at_the_connect_timeout() -> None:
    silent = ServerSpec(command=(sys.executable, "-c", "import time; time.sleep(60)"))
    remote = RemoteDispatcher(connect_timeout=0.5)
    try:
        with pytest.raises(TransportError) as caught:
            await call(remote, silent, "add")
        assert "did not start and list its tools within 0.5 s" in str(caught.value)
    finally:
        await remote.aclose()


async def test_a_killed_stdio_server_is_restarted_by_the_next_call(
    remote: RemoteDispatcher,
) -> None:
    spec = sdk_stdio(MODERN)
    first = (await call(remote, spec, "pid"))["pid"]
    os.kill(first, signal.SIGKILL)
    errors: list[TransportError] = []
    for _ in range(2):  # the kill may be noticed by the first call after it, which then fails
        try:
            second = (await call(remote, spec, "pid"))["pid"]
            break
        except TransportError as exc:
            errors.append(exc)
    assert len(errors) <= 1
    assert all(e.retryable and "MCP server 'sdk'" in str(e) for e in errors)
    assert second != first


async def test_a_server_dying_during_a_call_is_a_retryable_transport_error(
    remote: RemoteDispatcher,
) -> None:
    spec = sdk_stdio(MODERN)
    first = (await call(remote, spec, "pid"))["pid"]
    with pytest.raises(TransportError) as caught:
        await call(remote, spec, "crash")
    assert "MCP server 'sdk' closed the connection during the call to 'crash'" in str(caught.value)
    assert caught.value.retryable
    assert (await call(remote, spec, "pid"))["pid"] != first


async def test_an_unreachable_url_is_a_retryable_transport_error(
    remote: RemoteDispatcher,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(TransportError) as caught:
        await call(remote, ServerSpec(url=url), "add")
    assert "MCP server 'sdk' could not be reached" in str(caught.value)
    assert caught.value.retryable


async def test_an_http_server_that_restarts_is_reconnected_to(
    remote: RemoteDispatcher, tmp_path: Path
) -> None:
    port = free_port()
    spec = ServerSpec(url=f"http://127.0.0.1:{port}/mcp")
    with http_server(sdk_http_argv(port, MODERN), port, tmp_path / "first.log"):
        first = (await call(remote, spec, "pid"))["pid"]
        with pytest.raises(TransportError) as caught:
            await call(remote, spec, "crash")
        assert caught.value.retryable
    with pytest.raises(TransportError):
        await call(remote, spec, "pid")  # nothing listens now
    with http_server(sdk_http_argv(port, MODERN), port, tmp_path / "second.log"):
        assert (await call(remote, spec, "pid"))["pid"] != first


@pytest.mark.parametrize("era", [MODERN, HANDSHAKE])
async def test_an_http_server_restarted_between_calls_is_reached_again_without_error(
    remote: RemoteDispatcher, tmp_path: Path, era: str
) -> None:
    port = free_port()
    spec = ServerSpec(url=f"http://127.0.0.1:{port}/mcp")
    with http_server(sdk_http_argv(port, era), port, tmp_path / "first.log"):
        first = (await call(remote, spec, "pid"))["pid"]
    with http_server(sdk_http_argv(port, era), port, tmp_path / "second.log"):
        # a 2025-era server forgot the session (404): the call is resent on a new one
        assert (await call(remote, spec, "pid"))["pid"] != first


class _Failing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_DELETE = do_POST

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def failing_http() -> Iterator[str]:
    """A real HTTP server that answers every request with 503."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, name="failing-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/mcp"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


async def test_an_http_5xx_is_a_retryable_transport_error(
    remote: RemoteDispatcher, failing_http: str
) -> None:
    with pytest.raises(TransportError) as caught:
        await call(remote, ServerSpec(url=failing_http), "add")
    assert "MCP server 'sdk'" in str(caught.value)
    assert caught.value.retryable


async def test_aclose_stops_every_stdio_server() -> None:
    remote = RemoteDispatcher()
    pid = (await call(remote, sdk_stdio(MODERN), "pid"))["pid"]
    async with asyncio.timeout(30):
        await remote.aclose()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_check_accepts_known_servers_and_http_urls_offline() -> None:
    remote = RemoteDispatcher({"configured": ServerSpec(url="http://127.0.0.1:1/mcp")})
    workflow = {"local": ServerSpec(command=("mcp-server-time",))}
    for uri in ("mcp:configured#a", "mcp:local#b", "mcp:https://example.invalid/mcp#c"):
        remote.check(ToolURI.parse(uri), workflow)


@pytest.mark.parametrize(
    ("uri", "says"),
    [
        ("mcp:nowhere#add", "unknown MCP server 'nowhere' (known: configured, empty, local)"),
        ("mcp:ftp://example.invalid/mcp#add", "must be http:// or https://"),
        ("mcp:empty#add", "neither a url nor a command"),
    ],
)
def test_check_rejects_unknown_servers_offline(uri: str, says: str) -> None:
    remote = RemoteDispatcher(
        {"configured": ServerSpec(url="http://127.0.0.1:1/mcp"), "empty": ServerSpec()}
    )
    with pytest.raises(ToolNotFoundError) as caught:
        remote.check(ToolURI.parse(uri), {"local": ServerSpec(command=("x",))})
    assert says in str(caught.value)
    assert caught.value.tool_uri == uri
