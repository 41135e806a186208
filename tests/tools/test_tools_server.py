"""builtin_server: which tools it registers, what they declare, and what importing costs."""

from __future__ import annotations

import subprocess
import sys

from sire.tools import builtin_server

TOOLS = [
    "echo",
    "exec",
    "file.read",
    "file.write",
    "http.request",
    "json.query",
    "sleep",
    "text.template",
]


def test_builtin_server_registers_the_eight_builtin_tools() -> None:
    server = builtin_server()

    assert server.name == "sire"
    assert [tool["name"] for tool in server.list_tools()] == TOOLS


def test_every_builtin_tool_declares_input_and_output_schemas_and_a_description() -> None:
    for tool in builtin_server().list_tools():
        assert tool["description"], tool["name"]
        assert tool["inputSchema"]["type"] == "object", tool["name"]
        assert tool["outputSchema"]["type"] == "object", tool["name"]


def test_injected_context_is_not_part_of_any_input_schema() -> None:
    for tool in builtin_server().list_tools():
        assert "ctx" not in tool["inputSchema"]["properties"], tool["name"]


def test_file_write_input_schema_requires_path_and_content() -> None:
    tools = {tool["name"]: tool for tool in builtin_server().list_tools()}

    schema = tools["file.write"]["inputSchema"]

    assert schema["required"] == ["path", "content"]
    assert schema["properties"]["append"]["default"] is False
    assert schema["properties"]["make_dirs"]["default"] is True
    assert schema["additionalProperties"] is False


def test_http_request_output_schema_makes_json_optional() -> None:
    tools = {tool["name"]: tool for tool in builtin_server().list_tools()}

    schema = tools["http.request"]["outputSchema"]

    assert schema["required"] == ["headers", "status", "text"]
    assert "json" in schema["properties"]


def test_building_and_listing_the_server_imports_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "from sire.tools import builtin_server\n"
        "builtin_server().list_tools()\n"
        "heavy = {'jinja2', 'httpx', 'jmespath', 'asyncio'} & set(sys.modules)\n"
        "print(sorted(heavy))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=30
    )

    assert done.stdout.strip() == "[]"
