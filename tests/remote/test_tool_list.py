"""`sire tool list --server NAME|URL`: a remote server's tools with their schemas."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sire.cli.main import main

from .conftest import MODERN, SDK_SERVER, HttpServer


def tool_list(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["tool", "list", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user config naming the SDK test server (stdio) `calc`."""
    home = tmp_path / "home"
    home.mkdir()
    command = json.dumps([sys.executable, str(SDK_SERVER), "stdio"])
    (home / "config.yaml").write_text(f"servers:\n  calc:\n    command: {command}\n")
    monkeypatch.setenv("SIRE_HOME", str(home))


@pytest.mark.usefixtures("configured")
def test_a_named_server_lists_its_tools_with_schemas(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = tool_list(capsys, "--server", "calc", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["server"] == "calc"
    tools = {tool["name"]: tool for tool in document["tools"]}
    assert tools["add"]["inputSchema"]["required"] == ["a", "b"]
    assert tools["add"]["outputSchema"]["properties"]["sum"] == {"type": "integer"}
    assert tools["crash"]["description"] == "Exits the process mid-call."


@pytest.mark.usefixtures("configured")
def test_the_human_listing_names_each_tool_by_its_uri(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = tool_list(capsys, "--server", "calc")
    assert code == 0
    assert any(line.startswith("mcp:calc#add") and "(a, b)" in line for line in out.splitlines())


def test_a_url_lists_that_servers_tools(
    sdk_http: dict[str, HttpServer], capsys: pytest.CaptureFixture[str]
) -> None:
    url = sdk_http[MODERN].url
    code, out, err = tool_list(capsys, "--server", url, "--json")
    assert code == 0, err
    assert "add" in {tool["name"] for tool in json.loads(out)["tools"]}


@pytest.mark.usefixtures("configured")
def test_an_unknown_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = tool_list(capsys, "--server", "nope")
    assert code == 2
    assert out == ""
    assert err.strip() == (
        "sire: error: no MCP server named 'nope' in the user config (known: calc); "
        "give a configured name or an http(s) URL"
    )


def test_an_unreachable_server_is_an_environment_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = tool_list(capsys, "--server", "http://127.0.0.1:9/mcp", "--json")
    assert code == 3
    error = json.loads(out)["error"]
    assert error["type"] == "ConfigError"
    assert error["message"].startswith("MCP server at http://127.0.0.1:9/mcp could not be reached")
