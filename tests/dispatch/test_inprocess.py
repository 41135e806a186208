"""InProcessServer and InProcessDispatcher: registering, listing, validating and calling tools."""

from __future__ import annotations

import asyncio
import enum
from typing import Any, TypedDict

import pytest

from sire.dispatch.dispatcher import DispatchContext, Dispatcher
from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
from sire.errors import ToolError, ToolInputError, ToolNotFoundError
from sire.model.uri import ToolURI

CTX = DispatchContext(execution_id="e1", step_id="s1", attempt=2, workspace="/ws")


class Sum(TypedDict):
    """The sum of two integers."""

    sum: int


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


def uri(text: str) -> ToolURI:
    return ToolURI.parse(text)


@pytest.fixture
def server() -> InProcessServer:
    server = InProcessServer("test")

    @server.tool()
    def add(a: int, b: int = 10) -> Sum:
        """Add two integers.

        The second defaults to ten.

        Args:
            a: the first term.
            b: the second term.
        """
        return {"sum": a + b}

    @server.tool("text.greet")
    async def greet(name: str, punctuation: str = "!") -> dict[str, str]:
        """Greet someone
        politely.
        """
        return {"greeting": f"hello {name}{punctuation}"}

    @server.tool()
    def where(ctx: DispatchContext, label: str = "here") -> dict[str, Any]:
        """Tell where the call comes from."""
        return {"label": label, "step": ctx.step_id, "attempt": ctx.attempt, "same": ctx is CTX}

    @server.tool()
    def fail(message: str) -> dict[str, Any]:
        """Fail with a ValueError."""
        raise ValueError(message)

    @server.tool()
    def refuse(message: str) -> dict[str, Any]:
        """Fail with a ToolError of its own."""
        raise ToolError(f"refused: {message}", retryable=False)

    @server.tool()
    def text():  # type: ignore[no-untyped-def]
        """Return a string instead of an object."""
        return "not an object"

    @server.tool()
    def liar(n: int) -> Sum:
        """Return something its output schema forbids."""
        return {"sum": str(n)}  # type: ignore[typeddict-item]

    @server.tool()
    def nothing() -> Sum:
        """Return an object that lacks a required key."""
        return {}  # type: ignore[typeddict-item]

    return server


@pytest.fixture
def dispatcher(server: InProcessServer) -> InProcessDispatcher:
    return InProcessDispatcher(server)


def test_the_in_process_dispatcher_is_a_dispatcher(dispatcher: InProcessDispatcher) -> None:
    assert isinstance(dispatcher, Dispatcher)


async def test_a_sync_tool_is_called_with_validated_arguments_and_defaults_filled_in(
    dispatcher: InProcessDispatcher,
) -> None:
    assert await dispatcher.dispatch(CTX, uri("sire:local/add"), {"a": 1, "b": 2}) == {"sum": 3}
    assert await dispatcher.dispatch(CTX, uri("sire:local/add"), {"a": 1}) == {"sum": 11}


async def test_an_async_tool_is_awaited_with_defaults_filled_in(
    dispatcher: InProcessDispatcher,
) -> None:
    result = await dispatcher.dispatch(CTX, uri("sire:local/text.greet"), {"name": "ada"})

    assert result == {"greeting": "hello ada!"}


async def test_the_dispatch_context_is_injected_into_the_parameter_annotated_with_it(
    dispatcher: InProcessDispatcher,
) -> None:
    result = await dispatcher.dispatch(CTX, uri("sire:local/where"), {})

    assert result == {"label": "here", "step": "s1", "attempt": 2, "same": True}


async def test_the_arguments_mapping_is_not_modified(dispatcher: InProcessDispatcher) -> None:
    params = {"a": 1}

    await dispatcher.dispatch(CTX, uri("sire:local/add"), params)

    assert params == {"a": 1}


async def test_the_server_calls_a_tool_by_name(server: InProcessServer) -> None:
    assert await server.call_tool("add", {"a": 5}, CTX) == {"sum": 15}


async def test_an_argument_of_the_wrong_type_is_a_tool_input_error_naming_it(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolInputError) as caught:
        await dispatcher.dispatch(CTX, uri("sire:local/add"), {"a": "1"})

    assert str(caught.value) == "add: arguments 'a' must be integer"
    assert caught.value.tool_uri == "sire:local/add"
    assert caught.value.retryable is False


async def test_a_missing_required_argument_is_a_tool_input_error_naming_it(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolInputError) as caught:
        await dispatcher.dispatch(CTX, uri("sire:local/add"), {"b": 1})

    assert str(caught.value) == "add: arguments must contain ['a'] properties"
    assert caught.value.tool_uri == "sire:local/add"


async def test_an_unknown_argument_is_a_tool_input_error_naming_it(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolInputError) as caught:
        await dispatcher.dispatch(CTX, uri("sire:local/add"), {"a": 1, "c": 2})

    assert str(caught.value) == "add: arguments must not contain {'c'} properties"


async def test_the_injected_context_cannot_be_passed_as_an_argument(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolInputError, match="'ctx'"):
        await dispatcher.dispatch(CTX, uri("sire:local/where"), {"ctx": "forged"})


async def test_a_tool_raising_value_error_is_a_tool_error_with_its_name_and_message(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolError) as caught:
        await dispatcher.dispatch(CTX, uri("sire:local/fail"), {"message": "disk full"})

    assert str(caught.value) == "fail: disk full"
    assert caught.value.tool_uri == "sire:local/fail"
    assert caught.value.retryable is True
    assert isinstance(caught.value.__cause__, ValueError)


async def test_a_tool_raising_an_exception_without_message_is_reported_by_its_type(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolError) as caught:
        await dispatcher.dispatch(CTX, uri("sire:local/fail"), {"message": ""})

    assert str(caught.value) == "fail: ValueError"
    assert caught.value.tool_uri == "sire:local/fail"


async def test_a_tool_raising_tool_error_keeps_its_own_message_and_fields(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolError) as caught:
        await dispatcher.dispatch(CTX, uri("sire:local/refuse"), {"message": "no"})

    assert str(caught.value) == "refused: no"
    assert caught.value.tool_uri == "sire:local/refuse"
    assert caught.value.retryable is False


async def test_a_tool_returning_something_other_than_an_object_is_a_tool_error(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolError) as caught:
        await dispatcher.dispatch(CTX, uri("sire:local/text"), {})

    assert str(caught.value) == "text returned str, not an object"
    assert caught.value.tool_uri == "sire:local/text"


async def test_an_output_violating_the_declared_output_schema_is_a_tool_error(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolError) as wrong_type:
        await dispatcher.dispatch(CTX, uri("sire:local/liar"), {"n": 1})
    with pytest.raises(ToolError) as missing_key:
        await dispatcher.dispatch(CTX, uri("sire:local/nothing"), {})

    assert str(wrong_type.value) == "liar: output 'sum' must be integer"
    assert wrong_type.value.tool_uri == "sire:local/liar"
    assert str(missing_key.value) == "nothing: output must contain ['sum'] properties"


async def test_an_unknown_tool_is_tool_not_found_listing_the_tools(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolNotFoundError) as caught:
        await dispatcher.dispatch(CTX, uri("sire:local/nope"), {})

    assert str(caught.value) == (
        "no tool 'nope' on server 'test' "
        "(tools: add, fail, liar, nothing, refuse, text, text.greet, where)"
    )
    assert caught.value.tool_uri == "sire:local/nope"
    assert caught.value.retryable is False


def test_check_of_an_unknown_tool_is_tool_not_found_with_the_uri(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolNotFoundError, match="no tool 'nope'") as caught:
        dispatcher.check(uri("sire:local/nope"), {})

    assert caught.value.tool_uri == "sire:local/nope"


def test_check_of_a_known_tool_passes(dispatcher: InProcessDispatcher) -> None:
    dispatcher.check(uri("sire:local/text.greet"), {})


@pytest.mark.parametrize("text", ["sire:other/add", "sire:other/nope", "sire:local#nope"])
def test_check_of_a_target_other_than_local_or_an_unknown_tool_is_tool_not_found(
    dispatcher: InProcessDispatcher, text: str
) -> None:
    with pytest.raises(ToolNotFoundError) as caught:
        dispatcher.check(uri(text), {})

    assert caught.value.tool_uri == text


async def test_dispatch_to_a_target_other_than_local_of_an_unknown_tool_is_tool_not_found(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolNotFoundError) as caught:
        await dispatcher.dispatch(CTX, uri("sire:other/nope"), {})

    assert str(caught.value) == (
        "'sire:other/nope' is not a built-in tool URI (expected sire:local/<tool>)"
    )
    assert caught.value.tool_uri == "sire:other/nope"


async def test_dispatch_to_a_target_other_than_local_of_a_known_tool_is_tool_not_found(
    dispatcher: InProcessDispatcher,
) -> None:
    with pytest.raises(ToolNotFoundError) as caught:
        await dispatcher.dispatch(CTX, uri("sire:other/add"), {"a": 1})

    assert caught.value.tool_uri == "sire:other/add"
    assert str(caught.value) == (
        "'sire:other/add' is not a built-in tool URI (expected sire:local/<tool>)"
    )


def test_registering_a_second_tool_of_the_same_name_is_a_value_error(
    server: InProcessServer,
) -> None:
    def add(a: int) -> dict[str, int]:
        return {"a": a}

    with pytest.raises(ValueError, match="tool 'add' is already registered"):
        server.add_tool(add)


def test_list_tools_shows_each_tool_as_mcp_tools_list_does_sorted_by_name(
    server: InProcessServer,
) -> None:
    tools = server.list_tools()

    assert [tool["name"] for tool in tools] == [
        "add",
        "fail",
        "liar",
        "nothing",
        "refuse",
        "text",
        "text.greet",
        "where",
    ]
    assert tools[0] == {
        "name": "add",
        "description": "Add two integers.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "a": {"type": "integer", "description": "the first term."},
                "b": {"type": "integer", "description": "the second term.", "default": 10},
            },
            "required": ["a"],
            "additionalProperties": False,
        },
        "outputSchema": {
            "type": "object",
            "properties": {"sum": {"type": "integer"}},
            "required": ["sum"],
            "description": "The sum of two integers.",
        },
    }


def test_list_tools_joins_a_first_paragraph_wrapped_over_lines(server: InProcessServer) -> None:
    [greet] = [tool for tool in server.list_tools() if tool["name"] == "text.greet"]

    assert greet["description"] == "Greet someone politely."
    assert greet["outputSchema"] == {"type": "object", "additionalProperties": {"type": "string"}}


def test_list_tools_leaves_out_the_output_schema_of_a_tool_that_declares_none(
    server: InProcessServer,
) -> None:
    [text] = [tool for tool in server.list_tools() if tool["name"] == "text"]

    assert text == {
        "name": "text",
        "description": "Return a string instead of an object.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
    }


def test_an_explicit_description_replaces_the_docstring() -> None:
    server = InProcessServer()

    @server.tool("x.y", description="Explicit.")
    def undocumented() -> dict[str, Any]:
        return {}

    @server.tool()
    def bare() -> dict[str, Any]:
        return {}

    assert [(t["name"], t["description"]) for t in server.list_tools()] == [
        ("bare", ""),
        ("x.y", "Explicit."),
    ]


def test_registering_a_tool_whose_signature_has_no_schema_fails_when_it_is_described() -> None:
    server = InProcessServer()

    def untyped(a):  # type: ignore[no-untyped-def]
        return {}

    server.add_tool(untyped)

    with pytest.raises(TypeError, match="parameter 'a' needs a type annotation"):
        server.list_tools()


async def test_cancelling_the_call_of_an_async_tool_cancels_the_tool() -> None:
    server = InProcessServer()
    started, release = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    @server.tool()
    async def wait() -> dict[str, Any]:
        started.set()
        try:
            await release.wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return {}

    dispatcher = InProcessDispatcher(server)
    task = asyncio.create_task(dispatcher.dispatch(CTX, uri("sire:local/wait"), {}), name="call")
    async with asyncio.timeout(5):
        await started.wait()

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(5):
            await task

    assert seen == ["cancelled"]
    assert task.cancelled()


async def test_a_tool_taking_an_enum_receives_the_enum_member() -> None:
    server = InProcessServer()

    @server.tool()
    def paint(color: Color = Color.RED) -> dict[str, Any]:
        return {"is_member": isinstance(color, Color), "value": color.value}

    dispatcher = InProcessDispatcher(server)

    blue = await dispatcher.dispatch(CTX, uri("sire:local/paint"), {"color": "blue"})
    default = await dispatcher.dispatch(CTX, uri("sire:local/paint"), {})

    assert blue == {"is_member": True, "value": "blue"}
    assert default == {"is_member": True, "value": "red"}


async def test_a_tool_taking_a_fixed_tuple_accepts_a_matching_array() -> None:
    server = InProcessServer()

    @server.tool()
    def pair(p: tuple[int, str]) -> dict[str, Any]:
        return {"p": list(p)}

    dispatcher = InProcessDispatcher(server)

    assert await dispatcher.dispatch(CTX, uri("sire:local/pair"), {"p": [1, "a"]}) == {
        "p": [1, "a"]
    }
    with pytest.raises(ToolInputError):
        await dispatcher.dispatch(CTX, uri("sire:local/pair"), {"p": ["a", 1]})
    for wrong in ([1], [1, "a", 2]):
        with pytest.raises(ToolInputError):
            await dispatcher.dispatch(CTX, uri("sire:local/pair"), {"p": wrong})


async def test_the_advertised_schema_of_a_fixed_tuple_stays_json_schema_2020_12() -> None:
    server = InProcessServer()

    @server.tool()
    def pair(p: tuple[int, str]) -> dict[str, Any]:
        return {"p": list(p)}

    await InProcessDispatcher(server).dispatch(CTX, uri("sire:local/pair"), {"p": [1, "a"]})

    assert server.list_tools()[0]["inputSchema"]["properties"]["p"] == {
        "type": "array",
        "prefixItems": [{"type": "integer"}, {"type": "string"}],
        "items": False,
        "minItems": 2,
        "maxItems": 2,
    }


async def test_a_fixed_tuple_nested_in_a_typed_dict_is_validated() -> None:
    server = InProcessServer()

    @server.tool()
    def span(bounds: list[tuple[int, int]]) -> dict[str, Any]:
        return {"n": len(bounds)}

    dispatcher = InProcessDispatcher(server)

    assert await dispatcher.dispatch(CTX, uri("sire:local/span"), {"bounds": [[1, 2]]}) == {"n": 1}
    with pytest.raises(ToolInputError):
        await dispatcher.dispatch(CTX, uri("sire:local/span"), {"bounds": [[1, "2"]]})


async def test_an_enum_without_default_an_int_enum_and_an_optional_enum_receive_members() -> None:
    server = InProcessServer()

    @server.tool()
    def mix(color: Color, level: Level = Level.HIGH, maybe: Color | None = None) -> dict[str, Any]:
        return {"color": color, "level": level, "maybe": maybe}

    dispatcher = InProcessDispatcher(server)

    assert await dispatcher.dispatch(CTX, uri("sire:local/mix"), {"color": "blue"}) == {
        "color": Color.BLUE,
        "level": Level.HIGH,
        "maybe": None,
    }
    both = await dispatcher.dispatch(
        CTX, uri("sire:local/mix"), {"color": "red", "level": 1, "maybe": "blue"}
    )
    assert both == {"color": Color.RED, "level": Level.LOW, "maybe": Color.BLUE}
    assert type(both["maybe"]) is Color
    with pytest.raises(ToolInputError):
        await dispatcher.dispatch(CTX, uri("sire:local/mix"), {"color": "green"})
