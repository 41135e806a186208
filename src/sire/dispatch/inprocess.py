"""InProcessServer: Python functions as MCP tools; InProcessDispatcher: `sire:local/<tool>`.

A tool has a name, a description and `inputSchema` / `outputSchema` derived from its
type hints, as an MCP server would list them. Calling it validates the arguments
against the schema (filling in defaults) and then calls the function: no network, no
serialization, and no import of the MCP SDK. `sire mcp serve` serves the same
registry over MCP.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, TypeVar

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.toolschema import Schema, draft7, enum_parameters, function_schemas
from sire.errors import DispatchError, ToolError, ToolInputError, ToolNotFoundError, did_you_mean
from sire.model.uri import ToolURI
from sire.model.workflow import ServerSpec

F = TypeVar("F", bound=Callable[..., Any])
_Validator = Callable[[Any], Any]


class RegisteredTool:
    """One tool: its MCP description and the function behind it.

    Schemas and validators are derived on first use, so registering costs nothing
    at start-up.
    """

    __slots__ = ("_is_async", "_schemas", "_validators", "description", "fn", "name")

    def __init__(self, name: str, fn: Callable[..., Any], description: str) -> None:
        self.name = name
        self.fn = fn
        self.description = description
        self._schemas: tuple[Schema, Schema | None, str | None] | None = None
        self._validators: tuple[_Validator, _Validator | None] | None = None
        self._is_async = inspect.iscoroutinefunction(fn)

    @property
    def input_schema(self) -> Schema:
        return self._derive()[0]

    @property
    def output_schema(self) -> Schema | None:
        return self._derive()[1]

    def describe(self) -> dict[str, Any]:
        """The tool as MCP's `tools/list` shows it."""
        tool: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "inputSchema": self.input_schema,
        }
        if self.output_schema is not None:
            tool["outputSchema"] = self.output_schema
        return tool

    def _derive(self) -> tuple[Schema, Schema | None, str | None]:
        if self._schemas is None:
            self._schemas = function_schemas(self.fn, injected=(DispatchContext,))
        return self._schemas

    def validators(self) -> tuple[_Validator, _Validator | None]:
        if self._validators is None:
            inputs, outputs, _ = self._derive()
            validate_in = _compile(inputs)
            enums = enum_parameters(self.fn)
            if enums:
                validate_in = _with_enum_members(validate_in, enums)
            self._validators = (
                validate_in,
                _compile(outputs) if outputs is not None else None,
            )
        return self._validators

    async def call(self, arguments: Mapping[str, Any], ctx: DispatchContext) -> dict[str, Any]:
        """Validate `arguments` and call the tool; return its structured output.

        Raises:
            ToolInputError: the arguments do not match the input schema.
            ToolError: the tool failed, or returned something its schema forbids.
        """
        validate_in, validate_out = self.validators()
        try:
            kwargs = validate_in(dict(arguments))
        except Exception as exc:
            raise ToolInputError(f"{self.name}: {_schema_message(exc, 'arguments')}") from None
        context_param = self._derive()[2]
        if context_param is not None:
            kwargs[context_param] = ctx
        try:
            result = await self.fn(**kwargs) if self._is_async else self.fn(**kwargs)
        except DispatchError:
            raise
        except Exception as exc:
            raise ToolError(f"{self.name}: {str(exc) or type(exc).__name__}") from exc
        if not isinstance(result, dict):
            raise ToolError(f"{self.name} returned {type(result).__name__}, not an object")
        if validate_out is not None:
            try:
                validate_out(result)
            except Exception as exc:
                raise ToolError(f"{self.name}: {_schema_message(exc, 'output')}") from None
        return result


def _accept(value: Any) -> Any:
    return value


def _compile(schema: Schema) -> _Validator:
    """A validator for `schema`; one that accepts any object costs nothing to build or run."""
    accepts_any_object = (
        schema.get("additionalProperties", True) is True
        and not schema.get("properties")
        and set(schema) <= {"type", "properties", "additionalProperties", "description"}
    )
    if accepts_any_object:
        return _accept  # arguments and outputs are always objects already
    import fastjsonschema

    # fastjsonschema knows drafts 4 to 7; the advertised schema may use 2020-12 `prefixItems`.
    validate: _Validator = fastjsonschema.compile(draft7(schema))
    return validate


def _with_enum_members(validate: _Validator, enums: Mapping[str, type[Enum]]) -> _Validator:
    """`validate`, then each Enum parameter's JSON value turned into its member."""
    members = tuple(enums.items())

    def validate_and_convert(arguments: Any) -> Any:
        kwargs = validate(arguments)
        for name, enum_type in members:
            value = kwargs.get(name)
            if value is not None:
                kwargs[name] = enum_type(value)
        return kwargs

    return validate_and_convert


def _schema_message(exc: Exception, what: str) -> str:
    """Reword fastjsonschema's `data.x must be string` as `arguments 'x' must be string`."""
    message = getattr(exc, "message", None) or str(exc)
    if message.startswith("data."):
        name, _, rest = message[5:].partition(" ")
        return f"{what} '{name}' {rest}"
    return f"{what} {message.removeprefix('data ')}"


class InProcessServer:
    """A registry of Python functions served as MCP tools.

    Example:
        server = InProcessServer("sire")

        @server.tool()
        def add(a: int, b: int) -> dict[str, int]:
            '''Add two integers.'''
            return {"sum": a + b}
    """

    def __init__(self, name: str = "sire") -> None:
        self.name = name
        self._tools: dict[str, RegisteredTool] = {}

    def tool(self, name: str | None = None, *, description: str | None = None) -> Callable[[F], F]:
        """Register the decorated function as a tool (its name defaults to the function's)."""

        def register(fn: F) -> F:
            self.add_tool(fn, name=name, description=description)
            return fn

        return register

    def add_tool(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> RegisteredTool:
        """Register `fn` as a tool.

        Raises:
            ValueError: a tool of that name exists.
        """
        tool_name = name or fn.__name__
        if tool_name in self._tools:
            raise ValueError(f"tool '{tool_name}' is already registered")
        doc = inspect.cleandoc(fn.__doc__ or "").split("\n\n")[0].replace("\n", " ")
        tool = RegisteredTool(tool_name, fn, description if description is not None else doc)
        self._tools[tool_name] = tool
        return tool

    def get(self, name: str) -> RegisteredTool:
        """The tool called `name`.

        Raises:
            ToolNotFoundError: there is none.
        """
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(sorted(self._tools))
            hint = did_you_mean(name, self._tools)
            raise ToolNotFoundError(
                f"no tool '{name}' on server '{self.name}' (tools: {known})"
                + (f"; {hint}" if hint else "")
            ) from None

    def list_tools(self) -> list[dict[str, Any]]:
        """Every tool as MCP's `tools/list` shows it, by name."""
        return [self._tools[name].describe() for name in sorted(self._tools)]

    async def call_tool(
        self, name: str, arguments: Mapping[str, Any], ctx: DispatchContext
    ) -> dict[str, Any]:
        """Call tool `name`; see `RegisteredTool.call`."""
        return await self.get(name).call(arguments, ctx)


class InProcessDispatcher:
    """Dispatches `sire:local/<tool>` calls to an InProcessServer."""

    def __init__(self, server: InProcessServer) -> None:
        self.server = server

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        if tool.target != "local":
            raise _not_local(tool)
        try:
            registered = self.server._tools[tool.tool]
        except KeyError:
            self.check(tool, ctx.servers)
            raise
        try:
            return await registered.call(params, ctx)
        except DispatchError as exc:
            exc.tool_uri = str(tool)
            raise

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None:
        if tool.target != "local":
            raise _not_local(tool)
        try:
            self.server.get(tool.tool)
        except ToolNotFoundError as exc:
            exc.tool_uri = str(tool)
            raise

    async def aclose(self) -> None:
        return None


def _not_local(tool: ToolURI) -> ToolNotFoundError:
    return ToolNotFoundError(
        f"'{tool}' is not a built-in tool URI (expected {tool.scheme}:local/<tool>)",
        tool_uri=str(tool),
    )
