"""A built-in tool answers the same in-process and through `sire mcp serve`.

Every built-in tool is called in-process (the InProcessDispatcher, as a workflow step
calls it) and through a real `sire mcp serve` process: with the official `mcp.Client`
over stdio and over Streamable HTTP in both protocol eras, and with Sire's own
RemoteDispatcher (`mcp:` steps). Outputs must be equal, and failures must carry the
same message.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher
from sire.dispatch.remote import RemoteDispatcher
from sire.errors import DispatchError, ToolError, ToolInputError
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec
from sire.tools import ToolSettings, builtin_server

from .conftest import CLIENT_MODE, EXEC_ALLOW, HANDSHAKE, MODERN, stdio_parameters

CALL_TIMEOUT = 30.0


def cases(http_endpoint: str) -> dict[str, tuple[str, dict[str, Any]]]:
    """Calls of every built-in tool, by case name: successes, failures, bad arguments."""
    return {
        "echo": ("echo", {"a": 1, "nested": {"b": [1, 2, None]}, "text": "é"}),
        "text.template": ("text.template", {"template": "Hi {{ who }}!", "data": {"who": "Ada"}}),
        "text.template-bad-syntax": ("text.template", {"template": "{{ oops", "data": {}}),
        "json.query": ("json.query", {"data": {"x": [3, 9, 4]}, "query": "max(x)"}),
        "json.query-bad-query": ("json.query", {"data": {}, "query": "[?"}),
        "sleep": ("sleep", {"seconds": "10ms"}),
        "sleep-bad-duration": ("sleep", {"seconds": "soon"}),
        "sleep-bad-arguments": ("sleep", {"seconds": []}),
        "file.write": ("file.write", {"path": "out/parity.txt", "content": "same\n"}),
        "file.read": ("file.read", {"path": "notes.txt"}),
        "file.read-missing": ("file.read", {"path": "missing.txt"}),
        "file.read-outside": ("file.read", {"path": "../escape.txt"}),
        "file.read-no-path": ("file.read", {}),
        "http.request": ("http.request", {"url": http_endpoint}),
        "http.request-not-http": ("http.request", {"url": "ftp://example.com/x"}),
        "exec": ("exec", {"command": ["echo", "hello", "world"]}),
        "exec-not-allowed": ("exec", {"command": ["ls"]}),
    }


async def in_process(workspace: Path, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The outcome of a call as a workflow step makes it: output, or error type and message."""
    dispatcher = InProcessDispatcher(builtin_server(ToolSettings(exec_allow=EXEC_ALLOW)))
    ctx = DispatchContext(execution_id="e", step_id="s", workspace=str(workspace))
    try:
        output = await dispatcher.dispatch(ctx, ToolURI.parse(f"sire:local/{tool}"), arguments)
    except DispatchError as exc:
        return {"error": str(exc)}
    return {"output": output}


async def all_in_process(workspace: Path, http_endpoint: str) -> dict[str, dict[str, Any]]:
    return {
        name: await in_process(workspace, tool, arguments)
        for name, (tool, arguments) in cases(http_endpoint).items()
    }


async def through_client(client: Any, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The outcome of a call through the official client, in the same shape."""
    result = await client.call_tool(tool, arguments)
    assert len(result.content) == 1, result
    assert result.content[0].type == "text", result
    text = result.content[0].text
    if result.is_error:
        assert result.structured_content is None
        return {"error": text}
    # The one text block holds the same JSON, for clients without structured output.
    assert json.loads(text) == result.structured_content
    return {"output": result.structured_content}


async def all_through_client(client: Any, http_endpoint: str) -> dict[str, dict[str, Any]]:
    async with asyncio.timeout(CALL_TIMEOUT):
        return {
            name: await through_client(client, tool, arguments)
            for name, (tool, arguments) in cases(http_endpoint).items()
        }


def test_the_cases_cover_every_builtin_tool() -> None:
    listed = {tool["name"] for tool in builtin_server().list_tools()}
    assert {tool for tool, _ in cases("http://x").values()} == listed


async def test_every_builtin_tool_answers_over_stdio_as_in_process(
    served: Any, http_endpoint: str
) -> None:
    from mcp import Client

    expected = await all_in_process(served.workspace, http_endpoint)
    async with Client(stdio_parameters(served)) as client:
        assert client.protocol_version == MODERN
        assert await all_through_client(client, http_endpoint) == expected


@pytest.mark.parametrize("era", [MODERN, HANDSHAKE])
async def test_every_builtin_tool_answers_over_http_as_in_process(
    served: Any, http_serve: Any, http_endpoint: str, era: str
) -> None:
    from mcp import Client

    expected = await all_in_process(served.workspace, http_endpoint)
    async with Client(http_serve.url, mode=CLIENT_MODE[era]) as client:
        assert client.protocol_version == era
        assert await all_through_client(client, http_endpoint) == expected


async def through_remote(
    remote: RemoteDispatcher, ctx: DispatchContext, tool: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    """The outcome of an `mcp:sire#<tool>` step's call, in the same shape.

    A tool error arrives as `tool '<tool>' on MCP server 'sire' failed: <the server's
    text>`; arguments the tool's inputSchema refuses are refused before they are sent.
    """
    try:
        async with asyncio.timeout(CALL_TIMEOUT):
            output = await remote.dispatch(ctx, ToolURI.parse(f"mcp:sire#{tool}"), arguments)
    except ToolError as exc:
        wrapped, prefix = str(exc), f"tool '{tool}' on MCP server 'sire' failed: "
        return {"error": wrapped.removeprefix(prefix) if wrapped.startswith(prefix) else wrapped}
    except ToolInputError as exc:
        return {"refused": str(exc)}
    return {"output": output}


@pytest.mark.parametrize("transport", ["http", "stdio"])
async def test_mcp_dispatch_through_sire_serve_equals_in_process_dispatch(
    served: Any, http_serve: Any, http_endpoint: str, transport: str
) -> None:
    if transport == "http":
        spec = ServerSpec(url=http_serve.url)
    else:
        argv = served.argv()
        spec = ServerSpec(command=tuple(argv), env={"SIRE_HOME": str(served.home)})
    expected = await all_in_process(served.workspace, http_endpoint)
    remote = RemoteDispatcher()
    ctx = DispatchContext(
        execution_id="e", step_id="s", idempotency_key="e/s", servers={"sire": spec}
    )
    try:
        got = {
            name: await through_remote(remote, ctx, tool, arguments)
            for name, (tool, arguments) in cases(http_endpoint).items()
        }
    finally:
        await remote.aclose()
    refused = {name for name, outcome in got.items() if "refused" in outcome}
    assert refused == {"sleep-bad-arguments", "file.read-no-path"}
    assert all("error" in expected[name] for name in refused)
    assert {name: got[name] for name in got if name not in refused} == {
        name: expected[name] for name in expected if name not in refused
    }


@pytest.mark.parametrize("era", [MODERN, HANDSHAKE])
async def test_tools_list_shows_the_in_process_schemas_verbatim(http_serve: Any, era: str) -> None:
    from mcp import Client

    in_process_tools = builtin_server(ToolSettings(exec_allow=EXEC_ALLOW)).list_tools()
    async with Client(http_serve.url, mode=CLIENT_MODE[era]) as client:
        listed = (await client.list_tools()).tools
    served_tools = {
        tool.name: tool.model_dump(by_alias=True, exclude_none=True, mode="json") for tool in listed
    }
    for tool in in_process_tools:
        shown = served_tools[tool["name"]]
        assert {key: shown.get(key) for key in tool} == tool
