"""RemoteDispatcher against servers Sire does not control: Python from PyPI, TypeScript from npm.

mcp-server-time (PyPI, the Python SDK) speaks the 2026-07-28 era over stdio;
@modelcontextprotocol/server-everything (npm, the TypeScript SDK) speaks the 2025-11-25
handshake era, over stdio and Streamable HTTP.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sire.dispatch.remote import RemoteDispatcher
from sire.errors import ToolInputError, TransportError
from sire.model.workflow import ServerSpec

from .conftest import HttpServer, call, free_port, http_server


async def test_mcp_server_time_over_stdio(
    remote: RemoteDispatcher, mcp_server_time: ServerSpec
) -> None:
    out = await call(remote, mcp_server_time, "get_current_time", {"timezone": "Europe/Paris"})
    assert out["timezone"] == "Europe/Paris"
    assert {"datetime", "day_of_week", "is_dst"} <= out.keys()


async def test_mcp_server_time_arguments_are_checked_against_its_schema(
    remote: RemoteDispatcher, mcp_server_time: ServerSpec
) -> None:
    with pytest.raises(ToolInputError) as caught:
        await call(remote, mcp_server_time, "get_current_time", {})
    assert "missing argument 'timezone'" in str(caught.value)


@pytest.fixture(params=["stdio", "http"])
def everything(request: pytest.FixtureRequest, server_everything: Path) -> ServerSpec:
    """server-everything over each transport."""
    if request.param == "stdio":
        return ServerSpec(command=("node", str(server_everything), "stdio"))
    server: HttpServer = request.getfixturevalue("everything_http")
    return ServerSpec(url=server.url)


async def test_server_everything_echo_and_sum_map_their_text(
    remote: RemoteDispatcher, everything: ServerSpec
) -> None:
    assert await call(remote, everything, "echo", {"message": "hi"}) == {
        "text": "Echo: hi",
        "content": [{"type": "text", "text": "Echo: hi"}],
    }
    summed = await call(remote, everything, "get-sum", {"a": 2, "b": 40})
    assert summed["text"] == "The sum of 2 and 40 is 42."


async def test_server_everything_structured_content_is_the_output(
    remote: RemoteDispatcher, everything: ServerSpec
) -> None:
    out = await call(remote, everything, "get-structured-content", {"location": "Chicago"})
    assert {"temperature", "conditions", "humidity"} <= out.keys()


async def test_server_everything_arguments_are_checked_before_sending(
    remote: RemoteDispatcher, everything: ServerSpec
) -> None:
    with pytest.raises(ToolInputError) as caught:
        await call(remote, everything, "echo", {"message": 42})
    assert "argument 'message' must be string" in str(caught.value)


async def test_server_everything_long_running_operation_reports_progress(
    remote: RemoteDispatcher, everything: ServerSpec
) -> None:
    seen: list[tuple[float, float | None]] = []
    out = await call(
        remote,
        everything,
        "trigger-long-running-operation",
        {"duration": 0.3, "steps": 3},
        report_progress=lambda p, t, m: seen.append((p, t)),
    )
    assert "Long running operation completed" in out["text"]
    assert seen == [(1, 3), (2, 3), (3, 3)]


async def test_server_everything_cancelled_call_leaves_the_session_usable(
    remote: RemoteDispatcher, everything: ServerSpec
) -> None:
    started = asyncio.Event()
    task = asyncio.create_task(
        call(
            remote,
            everything,
            "trigger-long-running-operation",
            {"duration": 60, "steps": 60},
            report_progress=lambda p, t, m: started.set(),
        )
    )
    async with asyncio.timeout(30):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await call(remote, everything, "echo", {"message": "still here"}))["text"] == (
        "Echo: still here"
    )


async def test_server_everything_restarted_between_calls_is_reached_on_the_next_attempt(
    remote: RemoteDispatcher, server_everything: Path, tmp_path: Path
) -> None:
    port = free_port()
    spec = ServerSpec(url=f"http://127.0.0.1:{port}/mcp")
    argv = ["node", str(server_everything), "streamableHttp"]
    env = {"PORT": str(port)}
    with http_server(argv, port, tmp_path / "first.log", env=env):
        assert (await call(remote, spec, "echo", {"message": "one"}))["text"] == "Echo: one"
    with http_server(argv, port, tmp_path / "second.log", env=env):
        # It refuses the session it forgot with a 400 whose body has no JSON-RPC id, which
        # the SDK cannot read: that attempt fails, retryably, and the next one reconnects.
        with pytest.raises(TransportError) as caught:
            await call(remote, spec, "echo", {"message": "two"})
        assert caught.value.retryable
        assert (await call(remote, spec, "echo", {"message": "three"}))["text"] == "Echo: three"
