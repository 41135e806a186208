"""Structured logs: JSON lines with the context fields, levels, redaction, a light `sire run`."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sire.observability import logging as logs
from sire.secrets.redact import Redactor, activate, deactivate

FLAKY = """\
id: logged
steps:
  - {id: greet, tool: "sire:local/echo", with: {msg: missing}}
  - id: read
    tool: "sire:local/file.read"
    with: {path: "{{ steps.greet.output.msg }}.txt"}
    retry: {max_attempts: 2, initial_interval: 10ms}
"""


def _sire(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from sire.cli.main import main; main()", *args]
    return subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def _lines(stderr: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


def test_log_lines_carry_the_workflow_execution_step_and_attempt(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(FLAKY)

    done = _sire(
        "--log-level", "info", "--log-format", "json", "run", "wf.yaml", "--json", cwd=tmp_path
    )

    assert done.returncode == 1, done.stderr
    execution_id = json.loads(done.stdout)["execution_id"]
    lines = _lines(done.stderr)
    events = [(line["event"], line.get("step_id"), line.get("attempt")) for line in lines]
    assert events == [
        ("sire.execution.running", None, None),
        ("sire.step.completed", "greet", 1),
        ("sire.step.retrying", "read", 1),
        ("sire.execution.retrying", None, None),  # only a retry is waiting
        ("sire.execution.running", None, None),
        ("sire.step.failed", "read", 2),
        ("sire.execution.failed", None, None),
    ]
    for line in lines:
        assert line["workflow_id"] == "logged"
        assert line["execution_id"] == execution_id
        assert line["timestamp"].endswith("Z")
    failed = lines[5]
    assert failed["level"] == "warning"
    assert "missing.txt" in failed["error"]
    assert lines[1]["level"] == "info"
    assert lines[1]["duration_ms"] >= 0


def test_sire_run_logs_nothing_by_default_and_never_imports_structlog(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(FLAKY)
    script = (
        "import sys, json\n"
        "from sire.cli.main import main\n"
        "code = main(['run', 'wf.yaml', '--json'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('structlog', 'prometheus_client') or m.startswith('opentelemetry.sdk'))\n"
        "print(json.dumps({'code': code, 'heavy': heavy}), file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "SIRE_LOG_"))}
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, env=env
    )

    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"code": 1, "heavy": []}
    assert done.stderr.count("\n") == 1  # nothing logged: the failure is in the JSON result


def test_the_environment_sets_format_and_level_for_sire_run(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(FLAKY)

    done = _sire(
        "run",
        "wf.yaml",
        "--json",
        cwd=tmp_path,
        env={"SIRE_LOG_LEVEL": "warning", "SIRE_LOG_FORMAT": "json"},
    )

    assert [line["event"] for line in _lines(done.stderr)] == []  # info lines filtered out
    done = _sire(
        "run",
        "wf.yaml",
        "--json",
        cwd=tmp_path,
        env={"SIRE_LOG_LEVEL": "info", "SIRE_LOG_FORMAT": "console"},
    )
    assert "sire.step.failed" in done.stderr
    assert "step_id=read" in done.stderr
    assert not _lines(done.stderr)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--log-level", "loud"], "--log-level loud: expected one of debug, info"),
        (["--log-format", "xml"], "--log-format xml: expected one of console, json"),
    ],
)
def test_a_bad_log_option_is_a_usage_error(sire: Any, args: list[str], message: str) -> None:
    result = sire(*args, "tool", "list")
    assert result.code == 2
    assert message in result.err


def test_secrets_are_masked_and_bound_fields_added() -> None:
    out = io.StringIO()
    logs.configure("json", "debug", stream=out)
    log = logs.get_logger("sire.test")
    token = activate(Redactor(["hunter2"]))
    run = logs.bind_run("wf", "ex-1")
    try:
        log.warning("sire.test.event", error="Bearer hunter2 refused", detail={"k": "hunter2"})
        log.debug("sire.test.debug")
    finally:
        logs.unbind_run(run)
        deactivate(token)
        logs.configure("json", "warning", stream=io.StringIO())
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["error"] == "Bearer *** refused"
    assert first["detail"] == {"k": "***"}
    assert (first["workflow_id"], first["execution_id"]) == ("wf", "ex-1")
    assert second["event"] == "sire.test.debug"
    assert second["level"] == "debug"
    assert "hunter2" not in out.getvalue()


def test_below_the_level_a_log_call_does_nothing() -> None:
    out = io.StringIO()
    logs.configure("json", "warning", stream=out)
    log = logs.get_logger("sire.test")
    log.info("sire.test.quiet", n=1)
    log.debug("sire.test.quiet", n=2)
    assert out.getvalue() == ""
    assert not log.enabled(logs.INFO)
    assert log.enabled(logs.WARNING)
