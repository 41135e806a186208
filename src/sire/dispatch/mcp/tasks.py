"""MCP task-augmented tool calls (the Tasks feature of 2025-11-25, SEP-1686).

A tool a server runs as a task answers `tools/call` at once with a task id; the result
comes later from `tasks/result`, once `tasks/get` says the task is done. Sire starts
such calls as tasks, checkpoints the task id with the running step (so a resumed
execution polls the same task instead of calling the tool again), shows each status
message as step progress, and cancels the task (`tasks/cancel`) when the step is
cancelled or runs past its deadline.

Used only when the session is in the handshake era and the server declares
`capabilities.tasks.requests.tools.call` and the tool `execution.taskSupport`. The MCP
SDK 2.3 defines the Task types but sends none of these requests ("types only"), so they
go raw through the SDK session's own dispatcher; switch to the SDK's calls when it has
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from sire.dispatch.dispatcher import DispatchContext

if TYPE_CHECKING:
    from mcp import Client
    from mcp.shared.dispatcher import CallOptions
    from mcp_types import CallToolResult, Tool

log = logging.getLogger(__name__)

#: The checkpoint key holding a running task's id.
CHECKPOINT_KEY = "mcp_task"
#: How long a server is asked to keep a task after it was created, in milliseconds.
TASK_TTL_MS = 24 * 3600 * 1000
#: Bounds on the wait between two `tasks/get` polls when the server suggests none.
DEFAULT_POLL = 1.0
MIN_POLL = 0.05
MAX_POLL = 10.0
#: Bound on `tasks/cancel` when a step is cancelled (best effort).
CANCEL_TIMEOUT = 5.0
_UNFINISHED = frozenset({"working", "input_required"})


def task_capable(client: Client, tool: Tool) -> bool:
    """Whether `tool` on `client`'s server should be called as a task."""
    if client.protocol_version >= "2026":  # tasks left the core protocol in 2026-07-28
        return False
    execution = tool.execution
    if execution is None or execution.task_support not in ("optional", "required"):
        return False
    tasks = client.server_capabilities.tasks
    requests = tasks.requests if tasks is not None else None
    tools = requests.tools if requests is not None else None
    return tools is not None and tools.call is not None


def resumable_task(ctx: DispatchContext) -> str | None:
    """The id of the task an interrupted run of this attempt started, if any."""
    task_id = ctx.resume.get(CHECKPOINT_KEY)
    return task_id if isinstance(task_id, str) and task_id else None


class TaskLost(Exception):
    """The server no longer knows a checkpointed task (it restarted, or the task expired)."""


async def start(
    client: Client,
    ctx: DispatchContext,
    name: str,
    arguments: dict[str, Any],
    meta: dict[str, Any],
    opts: CallOptions,
) -> CallToolResult:
    """Call `name` as a task, checkpoint its id, and wait for its result."""
    params = {"name": name, "arguments": arguments, "task": {"ttl": TASK_TTL_MS}, "_meta": meta}
    raw = await _outbound(client).send_raw_request("tools/call", params, opts)
    task = raw.get("task")
    if not isinstance(task, dict):  # the server answered directly after all
        return _result(raw)
    task_id = str(task.get("taskId") or "")
    if not task_id:
        raise ValueError("the server created a task without a taskId")
    await ctx.checkpoint({CHECKPOINT_KEY: task_id})
    return await _await(client, ctx, task_id, task)


async def resume(client: Client, ctx: DispatchContext, task_id: str) -> CallToolResult:
    """Wait for the checkpointed task `task_id` instead of calling the tool again.

    Raises:
        TaskLost: the server does not know the task any more.
    """
    from mcp.shared.exceptions import MCPError

    try:
        task = await _outbound(client).send_raw_request("tasks/get", {"taskId": task_id})
    except MCPError as exc:
        raise TaskLost(str(exc)) from exc
    return await _await(client, ctx, task_id, task)


async def _await(
    client: Client, ctx: DispatchContext, task_id: str, task: dict[str, Any]
) -> CallToolResult:
    """Poll `task_id` until it ends, then fetch its result; cancel it if we are cancelled."""
    outbound = _outbound(client)
    polls = 0
    try:
        while task.get("status") in _UNFINISHED:
            message = task.get("statusMessage")
            polls += 1
            ctx.report_progress(polls, None, message if isinstance(message, str) else None)
            await asyncio.sleep(_poll_interval(task))
            task = await outbound.send_raw_request("tasks/get", {"taskId": task_id})
    except asyncio.CancelledError:
        await _cancel(client, task_id)
        raise
    status = task.get("status")
    if status == "cancelled":
        raise TaskEnded(f"the server cancelled task {task_id}", task)
    # `tasks/result` answers a failed task too: its result (or error) says why.
    return _result(await outbound.send_raw_request("tasks/result", {"taskId": task_id}))


class TaskEnded(Exception):
    """A task ended without a result (cancelled on the server's side)."""

    def __init__(self, message: str, task: dict[str, Any]) -> None:
        super().__init__(message)
        self.task = task


async def _cancel(client: Client, task_id: str) -> None:
    """Ask the server to cancel `task_id`: shielded from our own cancellation, bounded."""

    async def cancel() -> None:
        await _outbound(client).send_raw_request("tasks/cancel", {"taskId": task_id})

    sent = asyncio.ensure_future(cancel())
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.shield(asyncio.wait_for(sent, CANCEL_TIMEOUT))
    if sent.done() and not sent.cancelled() and sent.exception() is not None:
        log.info("sire.mcp.task_cancel_failed task=%s error=%s", task_id, sent.exception())


def _poll_interval(task: dict[str, Any]) -> float:
    suggested = task.get("pollInterval")
    if isinstance(suggested, int | float) and suggested > 0:
        return min(MAX_POLL, max(MIN_POLL, suggested / 1000))
    return DEFAULT_POLL


def _result(raw: dict[str, Any]) -> CallToolResult:
    from mcp_types import CallToolResult

    body = {key: value for key, value in raw.items() if key != "_meta"}
    return CallToolResult.model_validate(body, by_name=False)


def _outbound(client: Client) -> Any:
    """The SDK session's dispatcher, which sends any method raw (see the module doc)."""
    return client.session._dispatcher
