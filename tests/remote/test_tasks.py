"""Task-augmented tool calls (MCP Tasks, 2025-11-25): started as tasks, polled, resumed
after a crash instead of called again, and cancelled with the step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sire.cli.main import main
from sire.dispatch.remote import RemoteDispatcher
from sire.errors import TransportError
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

from .conftest import context

TASK_SERVER = Path(__file__).with_name("task_server.py")


def task_server(state: Path) -> ServerSpec:
    return ServerSpec(command=(sys.executable, str(TASK_SERVER)), env={"TASK_STATE": str(state)})


def recorder() -> tuple[list[dict[str, Any]], list[str | None], dict[str, Any]]:
    saved: list[dict[str, Any]] = []
    messages: list[str | None] = []

    async def checkpoint(data: Any) -> None:
        saved.append(dict(data))

    def progress(done: float, total: float | None, message: str | None) -> None:
        messages.append(message)

    return saved, messages, {"checkpoint": checkpoint, "report_progress": progress}


async def test_a_task_tool_of_server_everything_runs_as_a_task(
    server_everything: Path, remote: RemoteDispatcher
) -> None:
    spec = ServerSpec(command=("node", str(server_everything), "stdio"))
    saved, messages, hooks = recorder()
    ctx = context({"everything": spec}, **hooks)
    tool = ToolURI.parse("mcp:everything#simulate-research-query")
    output = await remote.dispatch(ctx, tool, {"topic": "sire"})
    assert "# Research Report: sire" in output["text"]
    assert len(saved) == 1
    assert set(saved[0]) == {"mcp_task"}
    assert "Gathering sources..." in messages


async def test_a_task_is_polled_until_done_and_its_result_mapped(
    tmp_path: Path, remote: RemoteDispatcher
) -> None:
    saved, _, hooks = recorder()
    ctx = context({"jobs": task_server(tmp_path / "state.json")}, **hooks)
    output = await remote.dispatch(
        ctx, ToolURI.parse("mcp:jobs#job"), {"seconds": 0.3, "label": "a"}
    )
    assert output == {"label": "a", "task": saved[0]["mcp_task"]}


async def test_a_checkpointed_task_is_polled_not_called_again(
    tmp_path: Path, remote: RemoteDispatcher
) -> None:
    state = tmp_path / "state.json"
    servers = {"jobs": task_server(state)}
    _, _, hooks = recorder()
    first = await remote.dispatch(
        context(servers, **hooks), ToolURI.parse("mcp:jobs#job"), {"seconds": 0, "label": "x"}
    )
    resumed = await remote.dispatch(
        context(servers, resume={"mcp_task": first["task"]}),
        ToolURI.parse("mcp:jobs#job"),
        {"seconds": 0, "label": "ignored"},
    )
    assert resumed == first
    assert json.loads(state.read_text())["calls"] == 1


async def test_a_lost_task_is_called_again(tmp_path: Path, remote: RemoteDispatcher) -> None:
    state = tmp_path / "state.json"
    output = await remote.dispatch(
        context({"jobs": task_server(state)}, resume={"mcp_task": "gone"}),
        ToolURI.parse("mcp:jobs#job"),
        {"seconds": 0, "label": "again"},
    )
    assert output["label"] == "again"
    assert json.loads(state.read_text())["calls"] == 1


async def test_a_step_past_its_deadline_cancels_its_task(
    tmp_path: Path, remote: RemoteDispatcher
) -> None:
    state = tmp_path / "state.json"
    ctx = context({"jobs": task_server(state)}, deadline=time.monotonic() + 1.0)
    started = time.monotonic()
    with pytest.raises(TransportError, match="did not answer 'job' within"):
        await remote.dispatch(ctx, ToolURI.parse("mcp:jobs#job"), {"seconds": 60, "label": "x"})
    assert time.monotonic() - started < 5
    (task,) = json.loads(state.read_text())["tasks"].values()
    assert task["status"] == "cancelled"


WORKFLOW = """\
id: long-job
servers:
  jobs:
    command: {command}
    env: {{TASK_STATE: "{state}"}}
steps:
  - id: job
    tool: mcp:jobs#job
    with: {{seconds: 3, label: nightly}}
outputs:
  task: "{{{{ steps.job.output.task }}}}"
"""


def test_a_crashed_run_resumes_by_polling_its_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`sire run` is killed while its task runs; `sire execution resume` polls that task."""
    state = tmp_path / "state.json"
    command = json.dumps([sys.executable, str(TASK_SERVER)])
    flow = tmp_path / "long.yaml"
    flow.write_text(WORKFLOW.format(command=command, state=state))
    monkeypatch.setenv("SIRE_LEASE_TTL", "1")  # the dead run's lease soon lapses
    run = subprocess.Popen(
        [str(Path(sys.executable).with_name("sire")), "run", str(flow), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (state.exists() and json.loads(state.read_text())["tasks"]):
            assert run.poll() is None, run.stderr.read() if run.stderr else ""
            assert time.monotonic() < deadline, "the task never started"
            time.sleep(0.05)
        time.sleep(0.3)  # the checkpoint is written right after the task is created
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the run and its stdio server die together
        run.wait()
    time.sleep(1.2)
    listed = main(["execution", "list", "--json"])
    assert listed == 0
    (execution,) = json.loads(capsys.readouterr().out)["executions"]
    code = main(["execution", "resume", execution["execution_id"], "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    (task_id,) = json.loads(state.read_text())["tasks"]
    assert json.loads(out)["outputs"] == {"task": task_id}
    assert json.loads(state.read_text())["calls"] == 1
