"""Step logs: what a tool logs during its call (MCP `notifications/message`, a stdio
server's stderr) becomes `log` events of its step, shown by `sire execution logs`.

Real servers over real transports: the SDK test server (`chatty` logs each line as a
notification and on stderr) in both protocol eras, and server-everything.
"""

from __future__ import annotations

import io
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import Target

SIRE = [sys.executable, "-m", "sire"]


def workflow(write: Any, server: dict[str, Any], lines: list[str], **chatty: Any) -> Path:
    """A workflow calling `add` (which logs nothing), then `chatty` with `lines`."""
    talk = {"id": "talk", "tool": "mcp:sdk#chatty", "needs": ["quiet"]}
    talk["with"] = {"lines": lines, **chatty}
    document = {
        "id": "chatty",
        "servers": {"sdk": server},
        "steps": [
            {"id": "quiet", "tool": "mcp:sdk#add", "with": {"a": 1, "b": 2}},
            talk,
        ],
    }
    return write(json.dumps(document))  # JSON is YAML


def spec_of(target: Target) -> dict[str, Any]:
    if target.spec.url:
        return {"url": target.spec.url}
    return {"command": list(target.spec.command)}


def run(sire: Any, path: Path) -> str:
    result = sire("run", str(path), "--json")
    assert result.code == 0, result.err
    execution_id: str = result.json()["execution_id"]
    return execution_id


def events(sire: Any, execution_id: str) -> list[dict[str, Any]]:
    result = sire("execution", "logs", execution_id, "--json")
    assert result.code == 0, result.err
    return [json.loads(line) for line in result.out.splitlines()]


def logged(found: list[dict[str, Any]], logger: str) -> list[str]:
    return [e["message"] for e in found if e["kind"] == "log" and e["logger"] == logger]


def test_a_steps_log_notifications_and_stderr_are_its_log_events_in_order(
    sire: Any, write: Any, sdk_any_era: Target
) -> None:
    path = workflow(write, spec_of(sdk_any_era), ["one", "two", "three"])

    found = events(sire, run(sire, path))

    assert logged(found, "chatty") == ["one", "two", "three"]
    if sdk_any_era.transport == "stdio":
        assert logged(found, "stderr") == ["stderr: one", "stderr: two", "stderr: three"]
    else:  # an HTTP server's stderr is its own
        assert logged(found, "stderr") == []
    logs = [e for e in found if e["kind"] == "log"]
    assert {(e["key"], e["status"], e["attempt"]) for e in logs} == {("talk", "info", 1)}
    # In order among the step's events: after it starts, before it completes.
    order = [(e["kind"], e["key"], e["status"]) for e in found if e["key"] == "talk"]
    assert order[0] == ("step", "talk", "running")
    assert order[-1] == ("step", "talk", "completed")
    assert all(kind == "log" for kind, _, _ in order[1:-1])
    assert [e["seq"] for e in found] == sorted(e["seq"] for e in found)


def test_logs_read_as_lines_of_time_step_level_and_message(sire: Any, write: Any) -> None:
    spec = {"command": [sys.executable, str(Path(__file__).with_name("sdk_server.py")), "stdio"]}
    execution_id = run(sire, workflow(write, spec, ["hello there"], level="warning"))

    result = sire("execution", "logs", execution_id)

    assert result.code == 0, result.err
    lines = result.out.splitlines()
    notice = [line for line in lines if "[chatty]" in line]
    assert len(notice) == 1
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}  talk +warning +\[chatty\] hello there", notice[0])
    assert any(re.search(r"  talk +info +\[stderr\] stderr: hello there$", x) for x in lines)
    positions = {
        what: i
        for i, line in enumerate(lines)
        for what in ("running", "completed")
        if "talk" in line and line.split()[2] == what
    }
    assert positions["running"] < lines.index(notice[0]) < positions["completed"]


def test_a_secret_in_a_log_line_is_redacted(
    sire: Any, write: Any, monkeypatch: pytest.MonkeyPatch, sire_home: Path
) -> None:
    value = "hunter2-Very-Secret"
    monkeypatch.setattr(sys, "stdin", io.StringIO(value))
    assert sire("secret", "set", "token").code == 0
    spec = {"command": [sys.executable, str(Path(__file__).with_name("sdk_server.py")), "stdio"]}
    path = workflow(write, spec, ["the token is {{ secrets.token }}"])

    execution_id = run(sire, path)
    found = events(sire, execution_id)
    text = sire("execution", "logs", execution_id).out

    assert logged(found, "chatty") == ["the token is ***"]
    assert logged(found, "stderr") == ["stderr: the token is ***"]
    assert value not in text
    assert value.encode() not in b"".join(p.read_bytes() for p in sire_home.glob("sire.db*"))


def test_server_everything_log_notifications_are_step_logs(
    sire: Any, write: Any, server_everything: Path
) -> None:
    document = {
        "id": "everything",
        "servers": {"ev": {"command": ["node", str(server_everything), "stdio"]}},
        "steps": [
            {"id": "start", "tool": "mcp:ev#toggle-simulated-logging"},
            {"id": "stop", "tool": "mcp:ev#toggle-simulated-logging", "needs": ["start"]},
        ],
    }
    execution_id = run(sire, write(json.dumps(document)))

    found = [e for e in events(sire, execution_id) if e["kind"] == "log"]

    # Starting sends one message at once, of a random level; stopping sends none.
    notices = [e for e in found if e["key"] == "start" and e["logger"] != "stderr"]
    assert len(notices) == 1
    assert re.fullmatch(r"\w+.level.message", notices[0]["message"], re.IGNORECASE)
    assert notices[0]["status"] in {
        "debug",
        "info",
        "notice",
        "warning",
        "error",
        "critical",
        "alert",
        "emergency",
    }
    assert [e for e in found if e["key"] == "stop" and e["logger"] != "stderr"] == []


def _read_line(process: subprocess.Popen[str], deadline: float) -> str:
    assert process.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.1)
        if ready:
            return process.stdout.readline()
    raise AssertionError("no line within the deadline")


def test_follow_shows_logs_while_the_step_runs(write: Any, sire_home: Path) -> None:
    argv = [sys.executable, str(Path(__file__).with_name("sdk_server.py")), "stdio"]
    path = workflow(write, {"command": argv}, ["first", "second"], pause=2)
    env = {**os.environ, "SIRE_HOME": str(sire_home)}
    runner = subprocess.Popen(
        [*SIRE, "run", str(path), "--detach", "--json"], env=env, stdout=subprocess.PIPE, text=True
    )
    out, _ = runner.communicate(timeout=60)
    execution_id = json.loads(out)["execution_id"]
    agent = subprocess.Popen(
        [*SIRE, "agent", "--once"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    follower = subprocess.Popen(
        [*SIRE, "execution", "logs", execution_id, "--follow", "--json"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            event = json.loads(_read_line(follower, deadline))
            if event["kind"] == "log" and event["logger"] == "chatty":
                break
        assert event["message"] == "first"
        # Shown while the step runs: the server is still in its pause before "second".
        assert agent.poll() is None
        rest = [json.loads(line) for line in follower.stdout or ()]  # until it finishes
        assert follower.wait(30) == 0
    finally:
        for process in (follower, agent):
            if process.poll() is None:
                process.kill()
            process.wait(10)
    assert logged(rest, "chatty") == ["second"]
    assert (rest[-1]["kind"], rest[-1]["status"]) == ("execution", "completed")
