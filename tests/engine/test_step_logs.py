"""The engine keeps what a tool logs (`ctx.log`) as `log` events of its step and attempt."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Sequence
from typing import Any

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
from sire.dispatch.mux import DispatcherMux
from sire.engine import engine as engine_module
from sire.engine.engine import Engine
from sire.errors import ToolError
from sire.model.execution import Execution, ExecutionStatus, new_execution_id
from sire.model.loader import parse_workflow
from sire.storage.base import Event, Lease, LogEntry
from sire.testing import FakeClock, MemoryStore

BOUND = 5.0


class LoggedStore(MemoryStore):
    """A MemoryStore that says when it first wrote log lines."""

    def __init__(self) -> None:
        super().__init__()
        self.logged = asyncio.Event()

    async def add_logs(self, lease: Lease, key: str, entries: Sequence[LogEntry]) -> None:
        await super().add_logs(lease, key, entries)
        self.logged.set()


class Chatty:
    """A tool that logs `lines`, may fail its first attempts, and may wait to be seen."""

    def __init__(self, store: LoggedStore) -> None:
        self.store = store
        self.failures = 0
        self.server = InProcessServer("test")
        self.server.add_tool(self.chatty, name="chatty")

    async def chatty(
        self, ctx: DispatchContext, lines: list[str], wait_until_written: bool = False
    ) -> dict[str, Any]:
        """Log `lines`."""
        for line in lines:
            ctx.log("info", f"{line} (attempt {ctx.attempt})", "chatty")
        if wait_until_written:  # returns once the store holds a line: written while running
            await self.store.logged.wait()
        if self.failures:
            self.failures -= 1
            raise ToolError("not yet")
        return {"logged": len(lines)}


async def run(
    text: str, store: LoggedStore, tool: Chatty, secrets: dict[str, str] | None = None
) -> tuple[Execution, list[Event]]:
    workflow = parse_workflow(textwrap.dedent(text), source="test.yaml")
    mux = DispatcherMux({"sire": InProcessDispatcher(tool.server)}, entry_points=False)
    engine = Engine(store, mux, clock=FakeClock(), secrets=secrets)
    execution = Execution(new_execution_id(), workflow.id, workflow.digest, inputs={})
    await store.create_execution(execution, workflow.text)
    async with asyncio.timeout(BOUND):
        done = await engine.run(workflow, execution)
    return done, await store.list_events(execution.id)


def brief(events: list[Event]) -> list[tuple[str, str | None, str, Any]]:
    return [
        (e.kind, e.key, e.status, e.data.get("message") if e.kind == "log" else None)
        for e in events
        if e.key is not None
    ]


async def test_a_tools_lines_are_log_events_between_its_running_and_its_outcome() -> None:
    store = LoggedStore()
    execution, events = await run(
        """
        id: t
        steps:
          - {id: talk, tool: "sire:local/chatty", with: {lines: [one, two]}}
        """,
        store,
        Chatty(store),
    )

    assert execution.status is ExecutionStatus.COMPLETED
    assert brief(events) == [
        ("step", "talk", "running", None),
        ("log", "talk", "info", "one (attempt 1)"),
        ("log", "talk", "info", "two (attempt 1)"),
        ("step", "talk", "completed", None),
    ]
    assert {(e.data["logger"], e.data["attempt"]) for e in events if e.kind == "log"} == {
        ("chatty", 1)
    }


async def test_each_attempt_keeps_its_own_lines_before_its_outcome() -> None:
    store = LoggedStore()
    tool = Chatty(store)
    tool.failures = 1
    _, events = await run(
        """
        id: t
        steps:
          - id: talk
            tool: "sire:local/chatty"
            with: {lines: [hi]}
            retry: {max_attempts: 2, initial_interval: 1s}
        """,
        store,
        tool,
    )

    assert brief(events) == [
        ("step", "talk", "running", None),
        ("log", "talk", "info", "hi (attempt 1)"),
        ("step", "talk", "retrying", None),
        ("step", "talk", "running", None),
        ("log", "talk", "info", "hi (attempt 2)"),
        ("step", "talk", "completed", None),
    ]
    assert [e.data["attempt"] for e in events if e.kind == "log"] == [1, 2]


async def test_lines_are_written_while_the_step_still_runs() -> None:
    store = LoggedStore()
    execution, events = await run(
        """
        id: t
        steps:
          - {id: talk, tool: "sire:local/chatty", with: {lines: [early], wait_until_written: true}}
        """,
        store,
        Chatty(store),
    )

    assert execution.status is ExecutionStatus.COMPLETED  # else the tool waited forever
    assert [e.data["message"] for e in events if e.kind == "log"] == ["early (attempt 1)"]


async def test_an_attempt_keeps_at_most_its_share_of_lines_and_says_how_many_it_dropped(
    monkeypatch: Any,
) -> None:
    monkeypatch.setattr(engine_module, "MAX_LOG_LINES", 3)
    store = LoggedStore()
    _, events = await run(
        """
        id: t
        steps:
          - {id: talk, tool: "sire:local/chatty", with: {lines: [a, b, c, d, e]}}
        """,
        store,
        Chatty(store),
    )

    logs = [(e.status, e.data["message"]) for e in events if e.kind == "log"]
    assert logs == [
        ("info", "a (attempt 1)"),
        ("info", "b (attempt 1)"),
        ("info", "c (attempt 1)"),
        ("warning", "2 more log lines dropped (at most 3 an attempt)"),
    ]


async def test_a_secret_in_a_line_is_redacted_before_it_is_stored() -> None:
    store = LoggedStore()
    _, events = await run(
        """
        id: t
        steps:
          - {id: talk, tool: "sire:local/chatty", with: {lines: ["key={{ secrets.api }}"]}}
        """,
        store,
        Chatty(store),
        secrets={"api": "abc-123-very-secret"},
    )

    assert [e.data["message"] for e in events if e.kind == "log"] == ["key=*** (attempt 1)"]
