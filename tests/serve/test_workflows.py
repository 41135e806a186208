"""A workflow served as a tool: its schema, a durable execution per call, progress, failure
and cancellation, through a real `sire mcp serve` process and the official client."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from typing import Any

import pytest

from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus
from sire.storage import open_store

from .conftest import CLIENT_MODE, HANDSHAKE, MODERN, Served, start, stdio_parameters, stop

EXECUTION_ID_KEY = "sire/execution-id"
TIMEOUT = 30.0


async def stored(served: Served, execution_id: str) -> Execution:
    """The execution as the server's store holds it (the served SIRE_HOME's SQLite)."""
    store = await open_store(None, home=served.home)
    try:
        return await store.get_execution(execution_id)
    finally:
        await store.aclose()


async def finished(served: Served, execution_id: str, within: float = 15.0) -> Execution:
    """The execution once it has finished, asking the store until `within` s."""
    async with asyncio.timeout(within):
        while True:
            execution = await stored(served, execution_id)
            if execution.status.finished:
                return execution
            await asyncio.sleep(0.05)


async def sire_cli(served: Served, *args: str) -> Any:
    """`sire <args> --json` against the served home, as a user would run it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sire",
        *args,
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=served.env(),
    )
    async with asyncio.timeout(TIMEOUT):
        out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    return json.loads(out)


async def test_a_workflow_is_a_tool_named_by_its_id_with_its_inputs_as_input_schema(
    http_serve: Any,
) -> None:
    from mcp import Client

    async with Client(http_serve.url) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert {"greet", "broken", "slow"} <= set(tools)
    greet = tools["greet"]
    assert greet.input_schema == {
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": "who to greet"},
            "punctuation": {"type": "string", "default": "!"},
        },
        "additionalProperties": False,
        "required": ["name"],
    }
    assert greet.output_schema == {
        "type": "object",
        "properties": {"greeting": {}, "path": {}},
        "required": ["greeting", "path"],
    }
    assert greet.description is not None
    assert greet.description.startswith("Greets someone and saves the greeting.")
    # Without `outputs:`, the outputs are those of the steps nothing depends on.
    assert tools["broken"].output_schema == {"type": "object", "properties": {"after": {}}}


@pytest.mark.parametrize("era", [MODERN, HANDSHAKE])
async def test_a_workflow_call_runs_a_durable_execution_and_reports_each_step(
    served: Served, http_serve: Any, era: str
) -> None:
    from mcp import Client

    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    name = f"Ada-{era}"
    async with Client(http_serve.url, mode=CLIENT_MODE[era]) as client:
        async with asyncio.timeout(TIMEOUT):
            result = await client.call_tool("greet", {"name": name}, progress_callback=on_progress)
    assert not result.is_error, result
    outputs = {"greeting": f"Hello, {name}!", "path": f"greetings/{name}.txt"}
    assert result.structured_content == outputs
    assert json.loads(result.content[0].text) == outputs
    assert result.meta is not None
    execution_id = result.meta[EXECUTION_ID_KEY]
    assert progress == [
        (0, 2, f"execution {execution_id} of workflow 'greet' started"),
        (1, 2, "step 'compose' completed"),
        (2, 2, "step 'save' completed"),
    ]
    assert (served.workspace / "greetings" / f"{name}.txt").read_text() == f"Hello, {name}!"
    listed = await sire_cli(served, "execution", "list", "--workflow", "greet")
    (shown,) = [e for e in listed["executions"] if e["execution_id"] == execution_id]
    assert shown["status"] == "completed"
    assert shown["outputs"] == outputs
    assert shown["inputs"] == {"name": name, "punctuation": "!"}
    assert shown["workspace"] == str(served.workspace)


@pytest.mark.parametrize("era", [MODERN, HANDSHAKE])
async def test_a_workflow_call_over_stdio_answers_with_its_outputs_and_progress(
    served: Served, era: str
) -> None:
    from mcp import Client

    messages: list[str | None] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        messages.append(message)

    async with Client(stdio_parameters(served), mode=CLIENT_MODE[era]) as client:
        assert client.protocol_version == era
        async with asyncio.timeout(TIMEOUT):
            result = await client.call_tool(
                "greet", {"name": "Grace", "punctuation": "."}, progress_callback=on_progress
            )
    assert result.structured_content == {
        "greeting": "Hello, Grace.",
        "path": "greetings/Grace.txt",
    }
    assert messages[1:] == ["step 'compose' completed", "step 'save' completed"]
    assert result.meta is not None
    execution = await stored(served, result.meta[EXECUTION_ID_KEY])
    assert execution.status is ExecutionStatus.COMPLETED


async def test_a_failing_workflow_is_an_error_naming_the_failed_step_and_its_error(
    served: Served, http_serve: Any
) -> None:
    from mcp import Client

    async with Client(http_serve.url) as client:
        async with asyncio.timeout(TIMEOUT):
            result = await client.call_tool("broken", {})
    assert result.is_error
    (block,) = result.content
    assert block.type == "text"
    match = re.fullmatch(
        r"step 'read' failed: file\.read: 'missing\.txt' does not exist in the workspace "
        r"\(execution (\S+) of workflow 'broken'\)",
        block.text,
    )
    assert match, block.text
    execution = await stored(served, match[1])
    assert execution.status is ExecutionStatus.FAILED
    assert execution.step_states["read"].status is StepStatus.FAILED
    assert execution.step_states["after"].status is StepStatus.SKIPPED


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({}, "greet: missing required input 'name'"),
        ({"name": 3}, "greet: input 'name' must be string"),
        (
            {"name": "Ada", "nme": "x"},
            "workflow 'greet' has no input 'nme' (declared: name, punctuation)",
        ),
    ],
    ids=["missing", "wrong-type", "undeclared"],
)
async def test_arguments_that_are_not_the_workflows_inputs_are_an_error_with_the_reason(
    http_serve: Any, arguments: dict[str, Any], message: str
) -> None:
    from mcp import Client

    async with Client(http_serve.url) as client:
        async with asyncio.timeout(TIMEOUT):
            result = await client.call_tool("greet", arguments)
    assert result.is_error
    assert [block.text for block in result.content if block.type == "text"] == [message]


@pytest.mark.parametrize("era", [MODERN, HANDSHAKE])
async def test_cancelling_a_workflow_call_cancels_its_running_steps_and_its_execution(
    served: Served, http_serve: Any, era: str
) -> None:
    from mcp import Client

    messages: list[str] = []
    first_done = asyncio.Event()

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")
        if message == "step 'first' completed":
            first_done.set()

    async with Client(http_serve.url, mode=CLIENT_MODE[era]) as client:
        # `wait` sleeps 60 s: the test ends long before unless the cancellation reaches it.
        call = asyncio.create_task(
            client.call_tool("slow", {}, progress_callback=on_progress), name="slow-call"
        )
        async with asyncio.timeout(TIMEOUT):
            await first_done.wait()
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
    execution_id = messages[0].split()[1]
    execution = await finished(served, execution_id)
    assert execution.status is ExecutionStatus.CANCELLED
    assert execution.step_states["first"].status is StepStatus.COMPLETED
    assert execution.step_states["wait"].status is StepStatus.CANCELLED
    # `after` never started: the store cancels only the steps that have a state.
    never_ran = StepState(StepStatus.CANCELLED)
    assert execution.step_states.get("after", never_ran).status is StepStatus.CANCELLED


async def test_stopping_the_server_leaves_a_running_execution_resumable(served: Served) -> None:
    from mcp import Client

    proc = start(served.argv("--transport", "http", "--port", "0"), served.env())
    url = proc.ready.rpartition(" on ")[2].partition(" ")[0]
    messages: list[str] = []
    first_done = asyncio.Event()

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")
        if message == "step 'first' completed":
            first_done.set()

    try:
        async with Client(url) as client:
            call = asyncio.create_task(
                client.call_tool("slow", {}, progress_callback=on_progress), name="slow-call"
            )
            async with asyncio.timeout(TIMEOUT):
                await first_done.wait()
            code = await asyncio.to_thread(stop, proc.process)
            async with asyncio.timeout(TIMEOUT):
                result = await call
    finally:
        stop(proc.process)
    assert code == 0
    execution_id = messages[0].split()[1]
    assert result.is_error
    assert [block.text for block in result.content if block.type == "text"] == [
        f"the server stopped: execution {execution_id} of workflow 'slow' was interrupted "
        f"and is resumable (sire execution resume {execution_id})"
    ]
    execution = await stored(served, execution_id)
    assert execution.status is ExecutionStatus.RUNNING
    assert execution.step_states["first"].status is StepStatus.COMPLETED
    assert execution.step_states["wait"].status is StepStatus.PENDING
    assert execution.step_states["wait"].error == "interrupted"
