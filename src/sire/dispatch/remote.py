"""RemoteDispatcher: `mcp:` tool URIs, called on MCP servers over Streamable HTTP or stdio.

Above: the engine (through `DispatcherMux`), one `dispatch` per attempt. Below:
`sire.dispatch.mcp.session`, one live session per endpoint shared by every step and
execution of the process, over the official MCP SDK, which is imported on the first
connect only: a workflow without `mcp:` steps never loads it.

    mcp:http://host:port/mcp#tool    Streamable HTTP at that URL (https likewise)
    mcp:name#tool                    the named server: `url` + `headers` (Streamable
                                     HTTP) or `command` + `env` + `cwd` (stdio, started
                                     once and kept; restarted when it has died)

Arguments are checked against the tool's `inputSchema` before anything is sent; the
server's `outputSchema` is checked by the SDK (a violation names its JSON path). Every
call carries `_meta` with the idempotency key and W3C trace context, and forwards the
server's progress, and its log lines (`notifications/message`, a stdio server's stderr)
to `ctx.log`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, cast

from sire.dispatch.dispatcher import (
    DispatchContext,
    ProgressCallback,
    ignore_log,
    ignore_progress,
)
from sire.dispatch.mcp import tasks
from sire.dispatch.mcp.endpoint import Endpoint
from sire.dispatch.mcp.mapping import (
    argument_problem,
    compile_arguments,
    output_of,
    request_meta,
    text_of,
)
from sire.errors import (
    DispatchError,
    ToolError,
    ToolInputError,
    ToolNotFoundError,
    TransportError,
)
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

if TYPE_CHECKING:
    from mcp import Client
    from mcp.shared.dispatcher import CallOptions, ProgressFnT
    from mcp_types import CallToolResult, RequestParamsMeta

    from sire.dispatch.mcp.session import Connection, Session

#: Bound on a call when the context carries no deadline.
DEFAULT_CALL_TIMEOUT = 300.0
#: Bound on starting or reaching a server and listing its tools.
DEFAULT_CONNECT_TIMEOUT = 30.0
#: How long a failed call waits for its session to wind down to say why it ended.
_REASON_WAIT = 1.0

# JSON-RPC error codes (the SDK's own are not imported: that would load the SDK).
_CONNECTION_CLOSED = -32000
_REQUEST_TIMEOUT = -32001
_METHOD_NOT_FOUND = -32601
_INVALID_PARAMS = -32602
_INTERNAL_ERROR = -32603

log = logging.getLogger(__name__)

_NO_SERVERS: Mapping[str, ServerSpec] = MappingProxyType({})
_SESSION_GONE = re.compile(
    r"session (not found|terminated)|(no|invalid|unknown) (valid )?session", re.IGNORECASE
)


class RemoteDispatcher:
    """Dispatches `mcp:` calls to MCP servers, one cached session per endpoint.

    A workflow's own named servers (`ctx.servers`) win over the configured `servers`.
    Sessions belong to the event loop of their first call; `aclose` ends them all and
    stops every stdio process.
    """

    def __init__(
        self,
        servers: Mapping[str, ServerSpec] = _NO_SERVERS,
        *,
        call_timeout: float = DEFAULT_CALL_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        """Create a dispatcher.

        Args:
            servers: named servers from the user config (`mcp:name#tool`).
            call_timeout: bound on a call whose context has no deadline, in seconds.
            connect_timeout: bound on starting or reaching a server and listing its tools.
        """
        self._servers = servers
        self._call_timeout = call_timeout
        self._connect_timeout = connect_timeout
        self._sessions: dict[Endpoint, Session] = {}
        self._named: dict[str, tuple[ServerSpec, Endpoint]] = {}
        self._urls: dict[str, Endpoint] = {}

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None:
        """Check offline that `tool` names a known server or an http(s) URL.

        Raises:
            ToolNotFoundError: it does not.
        """
        self._endpoint(tool, servers)

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Call `tool` with `params`; return the step output (DESIGN §2's result mapping).

        Raises:
            ToolNotFoundError: no such server or tool.
            ToolInputError: `params` do not match the tool's `inputSchema`.
            ToolError: the tool reported an error, or broke its `outputSchema`.
            TransportError: the server could not be started or reached, or the call ran
                past its deadline or lost its connection (retryable).
        """
        session = self._session(self._endpoint(tool, ctx.servers))
        if ctx.deadline is None:
            budget = self._call_timeout
        else:
            budget = max(0.0, ctx.deadline - time.monotonic())
        conn: Connection | None = None
        try:
            async with asyncio.timeout(budget):
                conn = await session.connection()
                try:
                    return await self._call(conn, ctx, tool, params)
                except Exception as exc:
                    if not _unknown_session(conn, exc):
                        raise
                # The server restarted and forgot the session: it refused the request
                # unread, so the request is sent once more, on a new session.
                conn.close()
                conn = await session.connection()
                return await self._call(conn, ctx, tool, params)
        except DispatchError as exc:
            exc.tool_uri = str(tool)
            raise
        except TimeoutError:
            connected = conn is not None
            if not connected:
                message = f"{_server(tool)} did not connect within the call's {budget:.3g} s"
            else:
                message = f"{_server(tool)} did not answer '{tool.tool}' within {budget:.3g} s"
            raise TransportError(message, tool_uri=str(tool)) from None
        except Exception as exc:
            raise await self._failure(conn, tool, exc) from exc

    async def list_tools(
        self, server: str, servers: Mapping[str, ServerSpec] = _NO_SERVERS
    ) -> list[dict[str, Any]]:
        """The tools `server` (a named server or an http(s) URL) lists, as MCP JSON.

        The listing is the one the session fetched on connecting; later calls reuse it.

        Raises:
            ToolNotFoundError: `server` is neither a known name nor an http(s) URL.
            TransportError: the server could not be started or reached in time.
        """
        tool = ToolURI("mcp", server, "", "#")
        session = self._session(self._endpoint(tool, servers))
        try:
            async with asyncio.timeout(self._connect_timeout):
                conn = await session.connection()
        except TimeoutError:
            raise TransportError(
                f"{_server(tool)} did not list its tools within {self._connect_timeout:g} s"
            ) from None
        except Exception as exc:
            raise await self._failure(None, tool, exc) from exc
        return [
            described.model_dump(mode="json", by_alias=True, exclude_none=True)
            for described in conn.tools.values()
        ]

    def _session(self, endpoint: Endpoint) -> Session:
        """The one session of `endpoint` in this process, created on first use."""
        session = self._sessions.get(endpoint)
        if session is None:
            from sire.dispatch.mcp.session import Session

            session = self._sessions[endpoint] = Session(endpoint, self._connect_timeout)
        return session

    async def _call(
        self, conn: Connection, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        described = conn.tools.get(tool.tool)
        if described is None:
            known = sorted(conn.tools)
            shown = ", ".join(known[:10]) + (", …" if len(known) > 10 else "")
            raise ToolNotFoundError(
                f"{_server(tool)} has no tool '{tool.tool}' (tools: {shown or 'none'})"
            )
        try:
            validate = conn.validators[tool.tool]
        except KeyError:
            validate = conn.validators[tool.tool] = compile_arguments(
                described.input_schema, tool.tool
            )
        arguments = dict(params)
        if validate is not None:
            try:
                validate(arguments)
            except Exception as exc:  # fastjsonschema's JsonSchemaException
                raise ToolInputError(
                    f"tool '{tool.tool}' on {_server(tool)}: {argument_problem(exc)}"
                ) from None
        client = conn.client
        assert client is not None  # set before `ready`
        report = ctx.report_progress
        progress = None if report is ignore_progress else _forward(report)
        if ctx.log is ignore_log:
            listening: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        else:
            listening = conn.listen(ctx.log)
        with listening:
            if tasks.task_capable(client, described):
                result = await self._task(client, ctx, tool, arguments, progress)
            else:
                result = await client.call_tool(
                    tool.tool,
                    arguments,
                    progress_callback=progress,
                    meta=cast("RequestParamsMeta", request_meta(ctx)),
                )
            if ctx.log is not ignore_log and conn.endpoint.is_stdio:
                # stderr is a pipe apart from the answer's: let the loop read what the
                # server wrote there before answering (one poll, two turns of the loop).
                await asyncio.sleep(0)
                await asyncio.sleep(0)
        if result.is_error:
            text = text_of(result.content) or "no message"
            raise ToolError(f"tool '{tool.tool}' on {_server(tool)} failed: {text}")
        return output_of(result)

    async def _task(
        self,
        client: Client,
        ctx: DispatchContext,
        tool: ToolURI,
        arguments: dict[str, Any],
        progress: ProgressFnT | None,
    ) -> CallToolResult:
        """Call `tool` as an MCP task, or wait for the one an interrupted run started."""
        task_id = tasks.resumable_task(ctx)
        result = None
        try:
            if task_id is not None:
                try:
                    result = await tasks.resume(client, ctx, task_id)
                except tasks.TaskLost as exc:
                    log.info("sire.mcp.task_lost task=%s tool=%s error=%s", task_id, tool, exc)
            if result is None:
                opts: CallOptions = {} if progress is None else {"on_progress": progress}
                result = await tasks.start(
                    client, ctx, tool.tool, arguments, request_meta(ctx), opts
                )
        except tasks.TaskEnded as exc:
            raise ToolError(f"tool '{tool.tool}' on {_server(tool)}: {exc}") from None
        if not result.is_error:
            await client.session.validate_tool_result(tool.tool, result)
        return result

    async def _failure(self, conn: Connection | None, tool: ToolURI, exc: Exception) -> Exception:
        """The DispatchError a failed call raises, ending the session when it is broken."""
        from sire.dispatch.mcp.session import ConnectError, describe_exception

        server = _server(tool)
        uri = str(tool)
        if isinstance(exc, ConnectError):
            return TransportError(f"{server} {exc}", tool_uri=uri)
        if conn is None:
            return TransportError(f"{server}: {describe_exception(exc)}", tool_uri=uri)
        from mcp.shared.exceptions import MCPError
        from pydantic import ValidationError

        if isinstance(exc, MCPError):
            code = exc.code
            if _unknown_session(conn, exc):
                conn.close()
                return TransportError(
                    f"{server} no longer knows Sire's session (did it restart?): {exc}",
                    tool_uri=uri,
                )
            if code == _CONNECTION_CLOSED:
                conn.close()
                reason = await conn.reason(_REASON_WAIT)
                because = f": {reason}" if reason else ""
                return TransportError(
                    f"{server} closed the connection during the call to '{tool.tool}'{because}",
                    tool_uri=uri,
                )
            if code == _REQUEST_TIMEOUT:
                return TransportError(f"{server} timed out on '{tool.tool}'", tool_uri=uri)
            if code == _INTERNAL_ERROR:
                if _has_session(conn):
                    # Also how a 4xx/5xx without a JSON-RPC body arrives, which is how some
                    # servers refuse a session they lost: the next attempt starts a new one.
                    conn.close()
                return TransportError(f"{server} failed on '{tool.tool}': {exc}", tool_uri=uri)
            if code == _INVALID_PARAMS:
                return ToolInputError(
                    f"tool '{tool.tool}' on {server} rejected its arguments: {exc}", tool_uri=uri
                )
            if code == _METHOD_NOT_FOUND:
                return ToolNotFoundError(f"{server} cannot call tools: {exc}", tool_uri=uri)
            return ToolError(f"tool '{tool.tool}' on {server} failed: {exc}", tool_uri=uri)
        if not conn.alive:
            reason = await conn.reason(_REASON_WAIT)
            because = f": {reason}" if reason else ""
            return TransportError(
                f"{server} closed the connection during the call to '{tool.tool}'{because}",
                tool_uri=uri,
            )
        if isinstance(exc, RuntimeError):  # the SDK's outputSchema check
            cause = exc.__cause__  # jsonschema's ValidationError, which knows where
            path, message = getattr(cause, "json_path", None), getattr(cause, "message", None)
            if path is not None and message is not None:
                return ToolError(
                    f"tool '{tool.tool}' on {server}: output does not match its outputSchema "
                    f"at {path}: {message}",
                    tool_uri=uri,
                    retryable=False,  # the same call gets the same answer
                )
            first_line = str(exc).strip().partition("\n")[0]
            return ToolError(f"tool '{tool.tool}' on {server}: {first_line}", tool_uri=uri)
        if isinstance(exc, ValidationError):
            return ToolError(
                f"tool '{tool.tool}' on {server} returned a malformed result: "
                f"{describe_exception(exc)}",
                tool_uri=uri,
            )
        return TransportError(
            f"call to '{tool.tool}' on {server} failed: {describe_exception(exc)}", tool_uri=uri
        )

    def _endpoint(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> Endpoint:
        """The endpoint `tool` names, resolving named servers (the workflow's first)."""
        if tool.is_url:
            endpoint = self._urls.get(tool.target)
            if endpoint is None:
                if not tool.target.startswith(("http://", "https://")):
                    raise ToolNotFoundError(
                        f"'{tool}': an MCP server URL must be http:// or https://",
                        tool_uri=str(tool),
                    )
                endpoint = self._urls[tool.target] = Endpoint(url=tool.target)
            return endpoint
        name = tool.target
        spec = servers.get(name)
        if spec is None:
            spec = self._servers.get(name)
            if spec is None:
                known = ", ".join(sorted({*servers, *self._servers})) or "none"
                raise ToolNotFoundError(
                    f"'{tool}' names an unknown MCP server '{name}' (known: {known}); "
                    "define it under `servers:` in the workflow or the user config",
                    tool_uri=str(tool),
                )
        cached = self._named.get(name)
        if cached is not None and cached[0] is spec:
            return cached[1]
        if not spec.url and not spec.command:
            raise ToolNotFoundError(
                f"MCP server '{name}' has neither a url nor a command", tool_uri=str(tool)
            )
        endpoint = Endpoint.of(spec)
        self._named[name] = (spec, endpoint)
        return endpoint

    async def aclose(self) -> None:
        """End every session and stop every stdio server process."""
        sessions, self._sessions = self._sessions, {}
        if sessions:
            await asyncio.gather(*(session.aclose() for session in sessions.values()))


def _unknown_session(conn: Connection, exc: Exception) -> bool:
    """Whether a stateful Streamable HTTP server refused a request for an unknown session.

    Servers say so differently (the SDKs answer 404 with -32600 or -32001, others 400 with
    -32000), so the message decides; sessions exist only in the handshake era.
    """
    return (
        _has_session(conn) and hasattr(exc, "code") and _SESSION_GONE.search(str(exc)) is not None
    )


def _has_session(conn: Connection) -> bool:
    """Whether `conn` is a stateful Streamable HTTP session (handshake era, over HTTP)."""
    client = conn.client
    return not conn.endpoint.is_stdio and client is not None and client.protocol_version < "2026"


def _server(tool: ToolURI) -> str:
    """How messages name the server of `tool`."""
    return f"MCP server at {tool.target}" if tool.is_url else f"MCP server '{tool.target}'"


def _forward(report: ProgressCallback) -> ProgressFnT:
    """An SDK progress callback that hands each notification to `report`."""

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        report(progress, total, message)

    return on_progress
