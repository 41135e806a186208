"""The tools `sire mcp serve` offers, by name: built-in tools and workflows, in Sire's terms.

Above: `sire.serve.protocol`, which answers `tools/list` and `tools/call` from a Catalog.
Here: `ServedTool` (what a served tool must offer), `BuiltinTool` (a built-in tool of an
InProcessServer, called exactly as `sire:local/<tool>` would be), and `Catalog`, which
refuses two tools of one name at start-up. Nothing here imports the MCP SDK: a call
returns an `Outcome` or raises a `SireError`, and the protocol layer maps both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from sire.dispatch.dispatcher import DispatchContext, ProgressCallback, ignore_progress
from sire.errors import DefinitionError

if TYPE_CHECKING:
    from sire.dispatch.inprocess import InProcessServer, RegisteredTool
    from sire.serve.workflows import WorkflowTool

_EMPTY: Mapping[str, Any] = MappingProxyType({})


class Call(NamedTuple):
    """What one `tools/call` carries besides its arguments.

    Attributes:
        idempotency_key: the caller's `sire/idempotency-key` from `_meta`, if any.
        trace_context: the caller's W3C `traceparent` / `tracestate` from `_meta`.
        report_progress: sends a progress notification to the caller (a no-op when the
            caller gave no progress token).
    """

    idempotency_key: str = ""
    trace_context: Mapping[str, str] = _EMPTY
    report_progress: ProgressCallback = ignore_progress


class Outcome(NamedTuple):
    """A successful call: the structured output, and `_meta` for the result."""

    output: dict[str, Any]
    meta: Mapping[str, Any] = _EMPTY


class ServedTool(Protocol):
    """One tool as served: its MCP description and how to call it.

    `call` returns an Outcome or raises a `SireError` whose message is what the caller
    reads: `ToolInputError` / `InputError` for arguments that do not fit, `ToolError`
    for a failure of the tool (or of the workflow's execution).
    """

    @property
    def name(self) -> str: ...

    @property
    def input_schema(self) -> Mapping[str, Any]: ...

    def describe(self) -> dict[str, Any]: ...

    async def call(self, arguments: Mapping[str, Any], call: Call) -> Outcome: ...


class BuiltinTool:
    """A built-in tool, called with the same validation and messages as in a workflow step.

    File tools are confined to `workspace`, as `sire run --workspace` confines them.
    """

    def __init__(self, tool: RegisteredTool, workspace: str) -> None:
        self.tool = tool
        self.workspace = workspace

    @property
    def name(self) -> str:
        return self.tool.name

    @property
    def input_schema(self) -> Mapping[str, Any]:
        return self.tool.input_schema

    def describe(self) -> dict[str, Any]:
        return self.tool.describe()

    async def call(self, arguments: Mapping[str, Any], call: Call) -> Outcome:
        """Validate the arguments and run the tool.

        Raises:
            ToolInputError: the arguments do not match the tool's `inputSchema`.
            ToolError: the tool failed.
        """
        ctx = DispatchContext(
            execution_id="",
            step_id=self.tool.name,
            idempotency_key=call.idempotency_key,
            trace_context=call.trace_context,
            workspace=self.workspace,
            report_progress=call.report_progress,
        )
        return Outcome(await self.tool.call(arguments, ctx))


class Catalog:
    """The served tools by name: the built-in tools first, then each workflow under its id.

    Example:
        catalog = Catalog.of(builtin_server(), workspace="/srv/work")
    """

    def __init__(self, tools: Sequence[ServedTool]) -> None:
        """Serve `tools`.

        Raises:
            DefinitionError: a workflow's id is already the name of another tool, located
                at the workflow's `id`.
        """
        self._tools: dict[str, ServedTool] = {}
        for tool in tools:
            taken = self._tools.get(tool.name)
            if taken is not None:
                raise _clash(tool, taken)
            self._tools[tool.name] = tool

    @classmethod
    def of(
        cls,
        builtins: InProcessServer | None,
        workflows: Sequence[WorkflowTool] = (),
        *,
        workspace: str = ".",
    ) -> Catalog:
        """The built-in tools of `builtins` (None: none), then `workflows`.

        Raises:
            DefinitionError: two tools would share a name.
        """
        served: list[ServedTool] = []
        if builtins is not None:
            served.extend(
                BuiltinTool(builtins.get(t["name"]), workspace) for t in builtins.list_tools()
            )
        served.extend(workflows)
        return cls(served)

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> ServedTool | None:
        """The tool called `name`, or None."""
        return self._tools.get(name)

    def input_schema(self, name: str) -> Mapping[str, Any] | None:
        """The `inputSchema` of tool `name`, or None when there is no such tool."""
        tool = self._tools.get(name)
        return None if tool is None else tool.input_schema

    def list_tools(self) -> list[dict[str, Any]]:
        """Every tool as `tools/list` shows it, in serving order."""
        return [tool.describe() for tool in self._tools.values()]


def _clash(tool: ServedTool, taken: ServedTool) -> DefinitionError:
    """The start-up error for `tool`, whose name `taken` already has."""
    from sire.serve.workflows import WorkflowTool

    if not isinstance(tool, WorkflowTool):  # built-ins come first and are unique
        raise ValueError(f"two built-in tools are named '{tool.name}'")
    if isinstance(taken, WorkflowTool):
        other = taken.workflow.source or "another workflow file"
        reason = (
            f"workflow id '{tool.name}' is already served from {other}; "
            "each workflow is served as the tool named by its id, so give them different ids"
        )
    else:
        reason = (
            f"workflow id '{tool.name}' is the name of a built-in tool; "
            "each workflow is served as the tool named by its id, so rename the workflow"
        )
    workflow = tool.workflow
    return DefinitionError(reason, file=workflow.source, line=workflow.line("id"))
