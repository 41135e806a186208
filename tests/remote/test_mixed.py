"""One workflow run that mixes every kind of tool: built in, `mcp:` over stdio and
Streamable HTTP in both protocol eras, and `jsonrpc:`, with values flowing between them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from sire.cli.main import main

from .conftest import HANDSHAKE, MODERN, SDK_SERVER, HttpServer

#: Server name -> (transport, protocol era).
SERVERS = {
    "stdio_2026": ("stdio", MODERN),
    "stdio_2025": ("stdio", HANDSHAKE),
    "http_2026": ("http", MODERN),
    "http_2025": ("http", HANDSHAKE),
}


def test_one_run_mixes_builtin_mcp_on_both_transports_and_eras_and_jsonrpc(
    sdk_http: dict[str, HttpServer],
    service: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    servers = []
    for name, (transport, era) in SERVERS.items():
        if transport == "http":
            servers.append(f"  {name}: {{url: {sdk_http[era].url}}}")
        else:
            legacy = ", --legacy" if era == HANDSHAKE else ""
            servers.append(
                f"  {name}: {{command: [{sys.executable}, {SDK_SERVER}, stdio{legacy}]}}"
            )
    steps = []
    for n, name in enumerate(SERVERS, start=1):
        steps += [
            f"  - id: add_{name}",
            f"    tool: mcp:{name}#add",
            f'    with: {{a: "{{{{ steps.start.output.a }}}}", b: {n}}}',
            f"  - id: era_{name}",
            f"    tool: mcp:{name}#meta",
        ]
    text = "\n".join(
        [
            "id: mixed",
            "inputs:",
            "  a: {type: integer, default: 10}",
            "servers:",
            *servers,
            "steps:",
            "  - id: start",
            "    tool: sire:local/echo",
            '    with: {a: "{{ inputs.a }}"}',
            *steps,
            "  - id: total",
            f'    tool: "jsonrpc:{service}#math.add"',
            "    with:",
            '      a: "{{ steps.add_stdio_2026.output.sum + steps.add_stdio_2025.output.sum }}"',
            '      b: "{{ steps.add_http_2026.output.sum + steps.add_http_2025.output.sum }}"',
            "  - id: report",
            "    tool: sire:local/text.template",
            '    with: {template: "total {{ steps.total.output.sum }}"}',
            "outputs:",
            '  total: "{{ steps.total.output.sum }}"',
            '  report: "{{ steps.report.output.text }}"',
        ]
    )
    path = tmp_path / "mixed.yaml"
    path.write_text(text + "\n")

    assert main(["workflow", "validate", str(path)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    code = main(["run", str(path), "-i", "a=10", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    doc = json.loads(captured.out)
    assert doc["status"] == "completed"
    # 10+1, 10+2, 10+3, 10+4 over the four endpoints, summed by the JSON-RPC service.
    assert [doc["steps"][f"add_{name}"]["output"] for name in SERVERS] == [
        {"sum": 11},
        {"sum": 12},
        {"sum": 13},
        {"sum": 14},
    ]
    assert doc["outputs"] == {"total": 50, "report": "total 50"}
    # Each server was reached in the protocol era it speaks.
    for name, (_, era) in SERVERS.items():
        assert doc["steps"][f"era_{name}"]["output"]["era"] == era, name
