"""`validate --online` and `run --dry-run --online`: steps checked against live tool lists."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from sire.model.workflow import ServerSpec

from .conftest import MODERN, SDK_SERVER, HttpServer


@pytest.fixture
def url(sdk_http: dict[str, HttpServer]) -> str:
    """The SDK test server over Streamable HTTP: `add` (integers a, b -> {sum}), `shout`..."""
    return sdk_http[MODERN].url


def test_validate_online_reports_each_broken_contract_at_its_line(
    sire: Any, write: Any, url: str
) -> None:
    path = write(f"""
        id: calc
        steps:
          - id: sum
            tool: "mcp:{url}#add"
            with: {{a: 1, b: two}}
          - id: typo
            tool: "mcp:{url}#ad"
          - id: loud
            tool: "mcp:{url}#shout"
            with: {{text: "{{{{ steps.sum.output.summ }}}}"}}
          - id: fine
            tool: "mcp:{url}#add"
            with: {{a: "{{{{ steps.sum.output.sum }}}}", b: 2}}
    """)
    result = sire("workflow", "validate", str(path), "--online", "--json")
    assert result.code == 2, result.err
    errors = result.json()["files"][0]["errors"]
    assert [(e["line"], e["path"]) for e in errors] == [
        (6, "steps[0].with.b"),
        (8, "steps[1].tool"),
        (11, "steps[2].with.text"),
    ]
    assert errors[0]["reason"] == (
        f"the arguments of 'mcp:{url}#add' do not match its inputSchema: "
        "argument 'b' must be integer"
    )
    assert errors[1]["reason"].startswith(f"MCP server at {url} has no tool 'ad' (tools: add, ")
    assert errors[1]["hint"] == "did you mean 'add'?"
    assert errors[2]["reason"] == (
        f"'steps.sum.output.summ' reads 'summ', which the outputSchema of 'mcp:{url}#add' "
        "does not declare (fields: sum)"
    )
    assert errors[2]["hint"] == "did you mean 'sum'?"


def test_without_online_the_same_workflow_validates(sire: Any, write: Any, url: str) -> None:
    path = write(f"""
        id: calc
        steps:
          - {{id: typo, tool: "mcp:{url}#ad", with: {{a: 1, b: two}}}}
    """)
    assert sire("workflow", "validate", str(path)).code == 0


def test_dry_run_online_checks_the_arguments_the_inputs_produce(
    sire: Any, write: Any, url: str
) -> None:
    path = write(f"""
        id: calc
        inputs:
          b: {{type: string}}
        steps:
          - {{id: sum, tool: "mcp:{url}#add", with: {{a: 1, b: "{{{{ inputs.b }}}}"}}}}
    """)
    assert sire("workflow", "validate", str(path), "--online").code == 0
    bad = sire("run", str(path), "--dry-run", "--online", "-i", "b=two")
    assert bad.code == 2
    assert bad.err.strip() == (
        f"sire: error: {path}:6: the arguments of 'mcp:{url}#add' do not match its "
        "inputSchema: argument 'b' must be integer at steps[0].with.b"
    )
    assert f"checked: sum against MCP server at {url}" in bad.out


def test_a_named_stdio_server_is_started_checked_and_stopped(sire: Any, write: Any) -> None:
    command = json.dumps([sys.executable, str(SDK_SERVER), "stdio"])
    path = write(f"""
        id: calc
        servers:
          calc: {{command: {command}}}
        steps:
          - {{id: sum, tool: "mcp:calc#add", with: {{a: 1, b: 2}}}}
          - {{id: loud, tool: "mcp:calc#shout", with: {{text: "{{{{ steps.sum.output.sum }}}}"}}}}
    """)
    result = sire("run", str(path), "--dry-run", "--online", "--json")
    assert result.code == 0, result.err
    doc = result.json()
    assert doc["online"] is True
    assert doc["unchecked"] == []
    assert [step["checked_on"] for step in doc["steps"]] == ["MCP server 'calc'"] * 2


def test_a_third_party_servers_schemas_are_checked(
    sire: Any, write: Any, mcp_server_time: ServerSpec
) -> None:
    command = json.dumps(list(mcp_server_time.command))
    path = write(f"""
        id: clock
        servers:
          time: {{command: {command}}}
        steps:
          - {{id: now, tool: "mcp:time#get_current_time", with: {{timezon: UTC}}}}
          - id: there
            tool: "mcp:time#convert_time"
            with:
              source_timezone: UTC
              time: "{{{{ steps.now.output.date_time }}}}"
              target_timezone: Europe/Paris
        outputs:
          when: "{{{{ steps.there.output.target.datetime }}}}"
          typo: "{{{{ steps.there.output.target.datetme }}}}"
    """)
    result = sire("workflow", "validate", str(path), "--online", "--json")
    assert result.code == 2, result.err
    errors = result.json()["files"][0]["errors"]
    assert [(e["path"], e["hint"]) for e in errors] == [
        ("steps[0].with", "did you mean 'timezone' instead of 'timezon'?"),
        ("steps[1].with.time", "did you mean 'datetime'?"),
        ("outputs.typo", "did you mean 'datetime'?"),
    ]
    assert errors[0]["reason"].endswith("missing argument 'timezone'")


def test_an_unreachable_server_exits_3_naming_it(sire: Any, write: Any) -> None:
    path = write("""
        id: gone
        steps:
          - {id: sum, tool: "mcp:http://127.0.0.1:9/mcp#add", with: {a: 1, b: 2}}
    """)
    for args in (("workflow", "validate"), ("run", "--dry-run")):
        result = sire(*args, str(path), "--online")
        assert result.code == 3
        assert result.out == ""
        assert result.err.startswith(
            "sire: error: cannot check the workflow online: "
            "MCP server at http://127.0.0.1:9/mcp could not be reached"
        )
        assert "Traceback" not in result.err
