"""The Dispatcher protocol and the frozen DispatchContext every call carries.

Above: the engine, which calls `dispatch` once per attempt. Below: the in-process
server, MCP clients, plugins. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, runtime_checkable

from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

#: `report_progress(progress, total, message)`: shown by the CLI, forwarded by `sire mcp serve`.
ProgressCallback = Callable[[float, float | None, str | None], None]
#: `await checkpoint(data)`: durable per-attempt data, such as a remote task id.
CheckpointCallback = Callable[[Mapping[str, Any]], Awaitable[None]]
#: `log(level, message, logger)`: a line the tool logged during the call (an MCP
#: `notifications/message`, a stdio server's stderr); kept with the step's events.
LogCallback = Callable[[str, str, str | None], None]


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def ignore_progress(progress: float, total: float | None, message: str | None) -> None:
    return None


async def ignore_checkpoint(data: Mapping[str, Any]) -> None:
    return None


def ignore_log(level: str, message: str, logger: str | None) -> None:
    return None


class DispatchContext(NamedTuple):
    """Everything a dispatcher may know about one attempt of one step (or item).

    Immutable; a NamedTuple rather than a frozen dataclass because one is built per
    attempt and this is five times faster to build. Construct it by keyword.

    Attributes:
        execution_id: the execution this call belongs to.
        step_id: the step making the call.
        item_index: the item's index for a `for_each` step, else None.
        attempt: 1 for the first attempt.
        deadline: `time.monotonic()` value after which the call is abandoned, or None.
        idempotency_key: `<execution_id>/<step_id>[/<item index>]`, the same on every attempt.
        trace_context: W3C trace context (`traceparent`, `tracestate`) for the call.
        workspace: the directory built-in file tools are confined to.
        servers: the workflow's named servers (`mcp:name#tool`), before user config.
        report_progress: called with progress notifications from the tool.
        checkpoint: persists per-attempt data durably (replacing what it saved before).
        resume: what an interrupted run of this attempt saved with `checkpoint` (e.g. a
            remote task id to poll instead of calling the tool again); empty when none.
        log: called with each line the tool logs during the call (level, message,
            logger or source); `ignore_log` when nobody keeps them.
    """

    execution_id: str
    step_id: str
    item_index: int | None = None
    attempt: int = 1
    deadline: float | None = None
    idempotency_key: str = ""
    trace_context: Mapping[str, str] = _EMPTY
    workspace: str = "."
    servers: Mapping[str, ServerSpec] = _EMPTY
    report_progress: ProgressCallback = ignore_progress
    checkpoint: CheckpointCallback = ignore_checkpoint
    resume: Mapping[str, Any] = _EMPTY
    log: LogCallback = ignore_log


class MockedOutput(dict[str, Any]):
    """An output a mock file gave instead of the tool: the engine marks the step `mocked`.

    A mocked failure is any DispatchError or TimeoutError with `mocked = True` set on it.
    """


@runtime_checkable
class Dispatcher(Protocol):
    """Calls tools by URI.

    `dispatch` returns the tool's structured output (a JSON object). It raises
    `DispatchError` for every failure: `ToolError` when the tool reports one,
    `ToolNotFoundError`, `ToolInputError`, or `TransportError`. Cancelling the
    awaiting task cancels the call. `check` validates a URI offline (no I/O),
    raising `ToolNotFoundError`. `aclose` releases connections and processes.
    """

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None: ...

    async def aclose(self) -> None: ...
