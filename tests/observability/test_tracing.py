"""Traces: spans per execution, attempt and call; one trace across an MCP server; resume links."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from sire.observability import tracing

TRACED_SERVER = Path(__file__).with_name("traced_server.py")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def traced_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The traced MCP server over Streamable HTTP: its URL and the file its spans go to."""
    port, spans = _free_port(), tmp_path / "server-spans.jsonl"
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, str(TRACED_SERVER), str(port), str(spans)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log.read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, f"the traced server did not listen: {log}"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp", spans
    finally:
        process.terminate()
        process.wait(10)


def _server_spans(path: Path, count: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if len(lines) >= count or time.monotonic() > deadline:
            return [json.loads(line) for line in lines]
        time.sleep(0.02)


def _hex(number: int, width: int) -> str:
    return f"{number:0{width}x}"


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    found = [s for s in spans if s.name == name]
    assert len(found) == 1, [s.name for s in spans]
    return found[0]


def test_an_mcp_servers_span_is_a_child_of_the_dispatch_span(
    sire: Any, write: Any, spans: InMemorySpanExporter, traced_server: tuple[str, Path]
) -> None:
    url, server_file = traced_server
    workflow = write(
        f"""\
        id: traced
        steps:
          - {{id: add, tool: "mcp:{url}#add", with: {{a: 2, b: 3}}}}
        """
    )

    result = sire("run", str(workflow), "--json")

    assert result.code == 0, result.err
    output = result.json()["steps"]["add"]["output"]
    assert output["sum"] == 5
    finished = list(spans.get_finished_spans())
    execution = _one(finished, "sire.execution")
    attempt = _one(finished, "sire.step add")
    dispatch = _one(finished, "tools/call add")
    trace_id = execution.context.trace_id
    assert {s.context.trace_id for s in finished} == {trace_id}
    assert execution.parent is None
    assert attempt.parent is not None
    assert attempt.parent.span_id == execution.context.span_id
    assert dispatch.parent is not None
    assert dispatch.parent.span_id == attempt.context.span_id
    assert dispatch.kind is SpanKind.CLIENT
    assert dispatch.attributes is not None
    assert dispatch.attributes["mcp.method.name"] == "tools/call"
    assert dispatch.attributes["gen_ai.tool.name"] == "add"
    assert dispatch.attributes["server.address"] == "127.0.0.1"
    # The server's spans: the SDK middleware's, from `_meta`, and the tool's own inside it.
    server = _server_spans(server_file, 2)
    call = [s for s in server if s["kind"] == "SERVER" and s["name"] == "tools/call add"]
    assert len(call) == 1, server
    assert call[0]["trace_id"] == _hex(trace_id, 32)
    assert call[0]["parent_id"] == _hex(dispatch.context.span_id, 16)
    work = [s for s in server if s["name"] == "add.work"]
    assert work
    assert work[0]["trace_id"] == _hex(trace_id, 32)
    assert work[0]["parent_id"] == call[0]["span_id"]
    # The same context went as a `traceparent` HTTP header.
    flags = _hex(dispatch.context.trace_flags, 2)
    dispatch_parent = f"00-{_hex(trace_id, 32)}-{_hex(dispatch.context.span_id, 16)}-{flags}"
    assert output["traceparent_header"] == dispatch_parent


def test_a_resumed_execution_links_to_its_earlier_drive(
    sire: Any, write: Any, spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    workflow = write(
        """\
        id: resumable
        steps:
          - {id: read, tool: "sire:local/file.read", with: {path: later.txt}}
        """
    )
    first = sire("run", str(workflow), "--json", "--workspace", str(tmp_path))
    assert first.code == 1
    execution_id = first.json()["execution_id"]
    (tmp_path / "later.txt").write_text("here now")

    second = sire("execution", "resume", execution_id, "--json")

    assert second.code == 0, second.err
    drives = [s for s in spans.get_finished_spans() if s.name == "sire.execution"]
    assert len(drives) == 2
    earlier, resumed = drives
    assert earlier.status.status_code.name == "ERROR"
    assert earlier.attributes is not None
    assert earlier.attributes["sire.execution.status"] == "failed"
    assert resumed.attributes is not None
    assert resumed.attributes["sire.resumed"] is True
    assert [link.context.span_id for link in resumed.links] == [earlier.context.span_id]
    assert [link.context.trace_id for link in resumed.links] == [earlier.context.trace_id]
    failed_attempt = next(s for s in spans.get_finished_spans() if s.name == "sire.step read")
    assert failed_attempt.attributes is not None
    assert failed_attempt.attributes["error.type"] == "error"


def test_tracing_is_off_without_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)
    tracing.reset()
    assert tracing.tracer() is None
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "none")
    assert not tracing.enabled_by(os.environ)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert not tracing.enabled_by(os.environ)  # the exporter variable wins
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    assert tracing.enabled_by(os.environ)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.enabled_by(os.environ)
    tracing.reset()


def test_an_unknown_exporter_is_one_clear_error(
    sire: Any, write: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin")
    tracing.reset()
    workflow = write("id: w\nsteps:\n  - {id: a, tool: 'sire:local/echo', with: {x: 1}}\n")
    try:
        result = sire("run", str(workflow))
    finally:
        tracing.reset()
    assert result.code == 3
    assert "OTEL_TRACES_EXPORTER=zipkin: unknown exporter" in result.err
    assert "Traceback" not in result.err
