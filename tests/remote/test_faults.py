"""Faults mid-call: each ends in a bounded, clear, retryable `TransportError`, then recovery.

A server that hangs (one call, or the whole process), a stdio server SIGKILLed during a
call, an HTTP server killed during a call and started again on the same port, and the
same kill under a workflow step with `retry:`, driven by the engine on a SQLite store.
The misbehaving server is `fault_server.py`; what fails between calls (rather than
during one) is in test_remote_failures.py.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from sire.config import load_config
from sire.dispatch.remote import RemoteDispatcher
from sire.errors import TransportError
from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus
from sire.model.loader import parse_workflow
from sire.model.workflow import ServerSpec

from .conftest import (
    FAULT_SERVER,
    HANDSHAKE,
    MODERN,
    HttpServer,
    call,
    fault_http_argv,
    fault_stdio,
    free_port,
    http_server,
)

#: The deadline given to calls that hang.
DEADLINE = 0.5
#: How late after its deadline (or after its server died) a failed call may end.
SLACK = 2.0
#: A deadline no call here should reach: a failure before it is not a timeout.
FAR = 30.0
ERAS = [MODERN, HANDSHAKE]
ERA_IDS = ["2026", "2025"]


@pytest.fixture(
    params=[("stdio", MODERN), ("stdio", HANDSHAKE), ("http", MODERN), ("http", HANDSHAKE)],
    ids=["stdio-2026", "stdio-2025", "http-2026", "http-2025"],
)
def faulty(request: pytest.FixtureRequest) -> ServerSpec:
    """The misbehaving server over each transport, in each protocol era."""
    transport, era = request.param
    if transport == "stdio":
        return fault_stdio(era)
    servers: dict[str, HttpServer] = request.getfixturevalue("fault_http")
    return ServerSpec(url=servers[era].url)


def within(seconds: float) -> float:
    """A deadline `seconds` from now, as `DispatchContext.deadline` takes it."""
    return time.monotonic() + seconds


async def marker_pid(marker: Path) -> int:
    """The pid `hang_once` writes to `marker` once its call has reached the server."""
    async with asyncio.timeout(FAR):
        while True:
            try:
                return int(await asyncio.to_thread(marker.read_text))
            except (OSError, ValueError):  # not written yet, or half written
                await asyncio.sleep(0.02)


def assert_transport_error(error: TransportError, tool: str) -> None:
    message = str(error)
    assert "MCP server 'sdk'" in message, message
    assert f"'{tool}'" in message, message
    assert error.retryable
    assert error.tool_uri == f"mcp:sdk#{tool}"
    assert "\n" not in message
    assert "Traceback" not in message


# (a) a server that never answers ------------------------------------------------------


async def test_a_call_that_never_answers_fails_at_its_deadline_and_the_session_lives_on(
    remote: RemoteDispatcher, faulty: ServerSpec
) -> None:
    pid = (await call(remote, faulty, "pid"))["pid"]  # connected: the deadline is the call's
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        await call(remote, faulty, "hang", deadline=within(DEADLINE))
    elapsed = time.monotonic() - started
    assert DEADLINE - 0.05 <= elapsed < DEADLINE + SLACK
    assert_transport_error(caught.value, "hang")
    assert f"did not answer 'hang' within {DEADLINE:g} s" in str(caught.value)
    # the same server process answers the next call: one hung call does not end it
    assert (await call(remote, faulty, "pid", deadline=within(FAR)))["pid"] == pid


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_frozen_server_fails_the_call_at_its_deadline_and_answers_once_thawed(
    remote: RemoteDispatcher, transport: str, fault_http: dict[str, HttpServer]
) -> None:
    spec = fault_stdio(MODERN) if transport == "stdio" else ServerSpec(url=fault_http[MODERN].url)
    pid = (await call(remote, spec, "pid"))["pid"]
    frozen = 1.5
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        await call(remote, spec, "freeze", {"seconds": frozen}, deadline=within(DEADLINE))
    assert DEADLINE - 0.05 <= time.monotonic() - started < DEADLINE + SLACK
    assert_transport_error(caught.value, "freeze")
    # still frozen now: the next call waits for the thaw, then is answered by the same process
    assert (await call(remote, spec, "pid", deadline=within(FAR)))["pid"] == pid
    assert time.monotonic() - started >= frozen - 0.05


# (b) a stdio server killed during a call ----------------------------------------------


async def test_a_stdio_server_killed_mid_call_fails_fast_and_the_next_call_restarts_it(
    remote: RemoteDispatcher, tmp_path: Path
) -> None:
    spec = fault_stdio(HANDSHAKE)  # the era of most stdio servers in the wild
    marker = tmp_path / "marker"
    hung = asyncio.create_task(
        call(remote, spec, "hang_once", {"marker": str(marker)}, deadline=within(FAR))
    )
    first = await marker_pid(marker)
    killed = time.monotonic()
    os.kill(first, signal.SIGKILL)
    with pytest.raises(TransportError) as caught:
        await hung
    assert time.monotonic() - killed < SLACK + 1, "the death was noticed only at the deadline"
    assert_transport_error(caught.value, "hang_once")
    assert "closed the connection during the call to 'hang_once'" in str(caught.value)
    again = await call(remote, spec, "hang_once", {"marker": str(marker)})
    assert again["first"] == first
    assert again["pid"] != first


# (c) an HTTP server killed during a call and started again on the same port ----------


@pytest.mark.parametrize("era", ERAS, ids=ERA_IDS)
async def test_an_http_server_restarted_mid_call_fails_the_call_and_is_reconnected_to(
    remote: RemoteDispatcher, tmp_path: Path, era: str
) -> None:
    port = free_port()
    spec = ServerSpec(url=f"http://127.0.0.1:{port}/mcp")
    marker = tmp_path / "marker"
    with http_server(fault_http_argv(port, era), port, tmp_path / "first.log") as server:
        assert (await call(remote, spec, "pid"))["pid"] == server.process.pid
        hung = asyncio.create_task(
            call(remote, spec, "hang_once", {"marker": str(marker)}, deadline=within(FAR))
        )
        first = await marker_pid(marker)
        assert first == server.process.pid
        ended: list[float] = []
        hung.add_done_callback(lambda _: ended.append(time.monotonic()))
        killed = time.monotonic()
        server.process.kill()
    with http_server(fault_http_argv(port, era), port, tmp_path / "second.log") as server:
        with pytest.raises(TransportError) as caught:
            await hung
        assert ended[0] - killed < SLACK + 1, "the lost connection was noticed only at the deadline"
        assert_transport_error(caught.value, "hang_once")
        # the next call reaches the new process, on a new session
        again = await call(remote, spec, "hang_once", {"marker": str(marker)})
        assert again == {"pid": server.process.pid, "first": first}
        assert (await call(remote, spec, "pid"))["pid"] == server.process.pid


# (d) the same under a workflow step with `retry:`, on the engine and SQLite -----------


async def test_a_step_with_retry_recovers_from_a_server_killed_mid_call(tmp_path: Path) -> None:
    from sire.cli import runtime
    from sire.engine.engine import NullObserver
    from sire.storage import open_store

    marker = tmp_path / "marker"
    workflow = parse_workflow(
        textwrap.dedent(f"""
            id: recover
            inputs:
              marker: {{type: string}}
            servers:
              faulty: {{command: ["{sys.executable}", "{FAULT_SERVER}", stdio]}}
            steps:
              - id: flaky
                tool: mcp:faulty#hang_once
                with: {{marker: "{{{{ inputs.marker }}}}"}}
                retry: {{max_attempts: 3, initial_interval: 50ms}}
                timeout: 30s
              - id: after
                tool: sire:local/echo
                with: {{served_by: "{{{{ steps.flaky.output.pid }}}}"}}
            outputs:
              first: "{{{{ steps.flaky.output.first }}}}"
              second: "{{{{ steps.after.output.served_by }}}}"
        """),
        source="recover.yaml",
    )
    config = load_config()
    mux = runtime.build_dispatcher(config)
    runtime.check_workflow(workflow, mux, config)
    execution = runtime.new_execution(workflow, {"marker": str(marker)}, tmp_path)
    db = f"sqlite:///{tmp_path / 'sire.db'}"
    retried: list[str] = []

    class Watch(NullObserver):
        def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
            if state.status is StepStatus.RETRYING:
                retried.append(f"{key}: {state.error}")

    driving = asyncio.create_task(
        runtime.execute(workflow, execution, config=config, db=db, dispatcher=mux, observer=Watch())
    )
    first = await marker_pid(marker)
    killed = time.monotonic()
    os.kill(first, signal.SIGKILL)
    async with asyncio.timeout(FAR):
        done = await driving
    assert time.monotonic() - killed < SLACK + 3
    assert done.status is ExecutionStatus.COMPLETED, done.error
    assert done.outputs == {"first": first, "second": done.step_states["flaky"].output["pid"]}
    assert done.outputs["second"] != first
    assert len(retried) == 1
    assert retried[0].startswith("flaky: ")
    assert (
        "MCP server 'faulty' closed the connection during the call to 'hang_once'" in (retried[0])
    )

    store = await open_store(db, home=tmp_path)
    try:
        stored = await store.get_execution(execution.id)
    finally:
        await store.aclose()
    assert stored.status is ExecutionStatus.COMPLETED
    flaky = stored.step_states["flaky"]
    assert (flaky.status, flaky.attempts) == (StepStatus.COMPLETED, 2)
    assert flaky.output == {"pid": done.outputs["second"], "first": first}
    assert stored.step_states["after"].output == {"served_by": done.outputs["second"]}
