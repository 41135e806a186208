"""toolschema: the JSON Schemas derived from type hints and signatures of in-process tools."""

from __future__ import annotations

import enum
from typing import Annotated, Any, Literal, NotRequired, Optional, Required, TypedDict

import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.toolschema import draft7, enum_parameters, function_schemas, type_schema


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class _CountsBase(TypedDict):
    """Word and line counts.

    Longer explanation that is not part of the description.
    """

    words: int
    lines: int


class Counts(_CountsBase, total=False):
    """Word and line counts, and the longest line when there is one."""

    longest: str


class Point(TypedDict):
    x: float
    y: Annotated[float, "the vertical coordinate"]


class Page(TypedDict):
    items: list[str]
    next: NotRequired[str]


class Draft(TypedDict, total=False):
    title: Required[Annotated[str, "what it is called"]]
    body: str
    tags: Annotated[NotRequired[list[str]], "labels"]


# Functional syntax: real objects, not strings, whatever `from __future__` says.
PageByCall = TypedDict("PageByCall", {"items": list[str], "next": NotRequired[str]})  # noqa: UP013


HINTS: list[tuple[Any, dict[str, Any]]] = [
    (str, {"type": "string"}),
    (int, {"type": "integer"}),
    (float, {"type": "number"}),
    (bool, {"type": "boolean"}),
    (type(None), {"type": "null"}),
    (Any, {}),
    (object, {}),
    (list[int], {"type": "array", "items": {"type": "integer"}}),
    (list, {"type": "array"}),
    (set[str], {"type": "array", "items": {"type": "string"}}),
    (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
    (
        tuple[int, str],
        {
            "type": "array",
            "prefixItems": [{"type": "integer"}, {"type": "string"}],
            "items": False,
            "minItems": 2,
            "maxItems": 2,
        },
    ),
    (dict[str, int], {"type": "object", "additionalProperties": {"type": "integer"}}),
    (dict[str, Any], {"type": "object"}),
    (dict, {"type": "object"}),
    (Literal["a", "b"], {"enum": ["a", "b"]}),
    (Color, {"enum": ["red", "blue"]}),
    (Level, {"enum": [1, 2]}),
    (int | None, {"type": ["integer", "null"]}),
    (Optional[str], {"type": ["string", "null"]}),  # noqa: UP045 - the spelling under test
    (str | int | bool, {"type": ["string", "integer", "boolean"]}),
    (
        list[int] | dict[str, str],
        {
            "anyOf": [
                {"type": "array", "items": {"type": "integer"}},
                {"type": "object", "additionalProperties": {"type": "string"}},
            ]
        },
    ),
    (
        Literal["a"] | None,
        {"anyOf": [{"enum": ["a"]}, {"type": "null"}]},
    ),
    (Annotated[int, "doc"], {"type": "integer", "description": "doc"}),
    (
        Annotated[int, 42, "first text wins", "second"],
        {"type": "integer", "description": "first text wins"},
    ),
    (Annotated[int, 42], {"type": "integer"}),
    (
        list[Annotated[str, "a name"]],
        {"type": "array", "items": {"type": "string", "description": "a name"}},
    ),
]


@pytest.mark.parametrize(("hint", "schema"), HINTS, ids=[repr(hint) for hint, _ in HINTS])
def test_type_schema_maps_each_supported_hint_to_its_json_schema(
    hint: Any, schema: dict[str, Any]
) -> None:
    assert type_schema(hint) == schema


def test_type_schema_returns_a_fresh_dict_each_time() -> None:
    first = type_schema(int)
    first["description"] = "changed"

    assert type_schema(int) == {"type": "integer"}


def test_type_schema_of_a_typeddict_lists_required_keys_and_its_first_doc_paragraph() -> None:
    assert type_schema(Counts) == {
        "type": "object",
        "properties": {
            "words": {"type": "integer"},
            "lines": {"type": "integer"},
            "longest": {"type": "string"},
        },
        "required": ["lines", "words"],
        "description": "Word and line counts, and the longest line when there is one.",
    }


def test_type_schema_of_a_typeddict_keeps_annotated_descriptions_of_its_keys() -> None:
    assert type_schema(Point) == {
        "type": "object",
        "properties": {
            "x": {"type": "number"},
            "y": {"type": "number", "description": "the vertical coordinate"},
        },
        "required": ["x", "y"],
    }


def test_type_schema_of_a_typeddict_with_not_required_keys_leaves_them_out_of_required() -> None:
    assert type_schema(PageByCall) == {
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"type": "string"}},
            "next": {"type": "string"},
        },
        "required": ["items"],
    }


def test_type_schema_of_a_class_typeddict_with_not_required_keys_under_string_annotations() -> None:
    schema = type_schema(Page)

    assert schema["properties"]["next"] == {"type": "string"}
    assert schema["required"] == ["items"]


def test_type_schema_of_a_partial_typeddict_counts_its_required_keys_as_required() -> None:
    assert type_schema(Draft) == {
        "type": "object",
        "properties": {
            "title": {"type": "string", "description": "what it is called"},
            "body": {"type": "string"},
            "tags": {"type": "array", "items": {"type": "string"}, "description": "labels"},
        },
        "required": ["title"],
    }


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (None, {"type": "null"}),
        (dict[str, None], {"type": "object", "additionalProperties": {"type": "null"}}),
    ],
    ids=repr,
)
def test_type_schema_accepts_none_as_the_null_type(hint: Any, schema: dict[str, Any]) -> None:
    assert type_schema(hint) == schema


@pytest.mark.parametrize("hint", [bytes, complex, DispatchContext, list[bytes], int | bytes])
def test_type_schema_refuses_a_type_without_json_schema(hint: Any) -> None:
    with pytest.raises(TypeError, match="has no JSON Schema"):
        type_schema(hint)


# --- function_schemas --------------------------------------------------------------------------


def write(path: str, content: str, ctx: DispatchContext, *, append: bool = False) -> dict[str, Any]:
    """Write a file.

    Args:
        path: where, relative to the workspace.
        content: what to write.
        append: add to the end instead of replacing.
    """
    raise NotImplementedError


def test_function_schemas_of_a_tool_with_a_context_parameter() -> None:
    inputs, outputs, context = function_schemas(write, injected=(DispatchContext,))

    assert inputs == {
        "type": "object",
        "properties": {
            "path": {"type": "string", "description": "where, relative to the workspace."},
            "content": {"type": "string", "description": "what to write."},
            "append": {
                "type": "boolean",
                "description": "add to the end instead of replacing.",
                "default": False,
            },
        },
        "required": ["path", "content"],
        "additionalProperties": False,
    }
    assert outputs == {"type": "object"}
    assert context == "ctx"


def test_function_schemas_of_a_tool_with_literal_optional_and_typeddict_output() -> None:
    def tool(
        text: Annotated[str, "the text to count"],
        mode: Literal["words", "lines"] = "words",
        limit: int | None = None,
    ) -> Counts:
        """Count.

        Args:
            text: ignored, the Annotated description wins.
            mode (str): what to count.
            limit: stop after this many.
        """
        raise NotImplementedError

    assert function_schemas(tool) == (
        {
            "type": "object",
            "properties": {
                "text": {"type": "string", "description": "the text to count"},
                "mode": {
                    "enum": ["words", "lines"],
                    "description": "what to count.",
                    "default": "words",
                },
                "limit": {
                    "type": ["integer", "null"],
                    "description": "stop after this many.",
                    "default": None,
                },
            },
            "required": ["text"],
            "additionalProperties": False,
        },
        type_schema(Counts),
        None,
    )


def test_google_style_args_give_parameter_descriptions_with_or_without_a_type() -> None:
    def tool(a: int, b: int, c: int) -> dict[str, int]:
        """Add.

        Args:
            a: the first term.
            b (int): the second term.
            c:the third term.
        """
        raise NotImplementedError

    properties = function_schemas(tool)[0]["properties"]

    assert properties["a"]["description"] == "the first term."
    assert properties["b"]["description"] == "the second term."
    assert properties["c"]["description"] == "the third term."


def test_a_description_wrapped_over_several_lines_is_kept_whole() -> None:
    def tool(a: int) -> dict[str, int]:
        """Add.

        Args:
            a: the first term, described
                over two lines.
        """
        raise NotImplementedError

    properties = function_schemas(tool)[0]["properties"]

    assert properties["a"]["description"] == "the first term, described over two lines."


def test_a_description_may_start_on_the_line_after_its_name() -> None:
    def tool(a: int, b: int) -> dict[str, int]:
        """Add.

        Args:
            a:
                the first term.
            b (int):
                the second
                term.
        """
        raise NotImplementedError

    properties = function_schemas(tool)[0]["properties"]

    assert properties["a"]["description"] == "the first term."
    assert properties["b"]["description"] == "the second term."


def test_the_args_section_ends_at_the_next_section() -> None:
    def tool(a: int, total: int = 0, error: str = "") -> dict[str, int]:
        """Add.

        Args:
            a: the first term,
                wrapped.

        Returns:
            total: not an argument's description.

        Raises:
            error: nor this.
        """
        raise NotImplementedError

    properties = function_schemas(tool)[0]["properties"]

    assert properties["a"]["description"] == "the first term, wrapped."
    assert "description" not in properties["total"]
    assert "description" not in properties["error"]


def test_a_parameter_missing_from_args_has_no_description() -> None:
    def tool(a: int, b: int) -> dict[str, int]:
        """Add.

        Args:
            a: the first term.
        """
        raise NotImplementedError

    assert function_schemas(tool)[0]["properties"]["b"] == {"type": "integer"}


def test_defaults_go_into_default_and_only_parameters_without_one_are_required() -> None:
    def tool(a: int, b: str = "x", c: float = 1.5, d: bool = True) -> dict[str, Any]:
        raise NotImplementedError

    inputs = function_schemas(tool)[0]

    assert inputs["required"] == ["a"]
    assert [inputs["properties"][name].get("default") for name in "abcd"] == [None, "x", 1.5, True]
    assert "default" not in inputs["properties"]["a"]


def test_a_tool_without_parameters_accepts_only_an_empty_object() -> None:
    def tool() -> dict[str, Any]:
        raise NotImplementedError

    inputs, _, _ = function_schemas(tool)

    assert inputs == {"type": "object", "properties": {}, "additionalProperties": False}


def test_var_keyword_parameters_allow_additional_properties() -> None:
    def tool(name: str, **extra: Any) -> dict[str, Any]:
        raise NotImplementedError

    inputs, _, _ = function_schemas(tool)

    assert inputs["additionalProperties"] is True
    assert list(inputs["properties"]) == ["name"]


def test_the_injected_context_parameter_is_left_out_and_named() -> None:
    def tool(ctx: DispatchContext, name: str) -> dict[str, Any]:
        raise NotImplementedError

    inputs, _, context = function_schemas(tool, injected=(DispatchContext,))

    assert context == "ctx"
    assert inputs["properties"] == {"name": {"type": "string"}}
    assert inputs["required"] == ["name"]


def test_without_injected_types_there_is_no_context_parameter() -> None:
    def tool(name: str) -> dict[str, Any]:
        raise NotImplementedError

    assert function_schemas(tool, injected=(DispatchContext,))[2] is None


def test_a_context_parameter_that_is_not_injected_has_no_json_schema() -> None:
    def tool(ctx: DispatchContext) -> dict[str, Any]:
        raise NotImplementedError

    with pytest.raises(TypeError, match="has no JSON Schema"):
        function_schemas(tool)


def test_a_parameter_without_annotation_is_a_type_error_naming_it() -> None:
    def tool(a: int, b) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        raise NotImplementedError

    with pytest.raises(TypeError) as caught:
        function_schemas(tool)

    assert str(caught.value) == "tool: parameter 'b' needs a type annotation"


def test_var_positional_parameters_are_a_type_error() -> None:
    def tool(*items: int) -> dict[str, Any]:
        raise NotImplementedError

    with pytest.raises(TypeError) as caught:
        function_schemas(tool)

    assert str(caught.value) == "tool: *items cannot be a tool argument"


@pytest.mark.parametrize("returns", ["int", "str", "list[int]", "int | None", "Point | None"])
def test_a_return_type_that_is_not_an_object_is_a_type_error(returns: str) -> None:
    def tool() -> None:
        raise NotImplementedError

    tool.__annotations__["return"] = returns

    with pytest.raises(TypeError) as caught:
        function_schemas(tool)

    assert str(caught.value) == "tool: a tool must return an object (a dict or TypedDict)"


@pytest.mark.parametrize("returns", ["None", "Any"])
def test_a_tool_returning_none_or_any_declares_no_output_schema(returns: str) -> None:
    def tool() -> None:
        raise NotImplementedError

    tool.__annotations__["return"] = returns

    assert function_schemas(tool)[1] is None


def test_a_tool_without_return_annotation_declares_no_output_schema() -> None:
    def tool(a: int):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    assert function_schemas(tool)[1] is None


def test_a_dict_return_type_declares_its_value_schema() -> None:
    def tool() -> dict[str, int]:
        raise NotImplementedError

    assert function_schemas(tool)[1] == {
        "type": "object",
        "additionalProperties": {"type": "integer"},
    }


def test_an_enum_default_is_given_as_its_json_value() -> None:
    def tool(color: Color = Color.RED) -> dict[str, Any]:
        raise NotImplementedError

    assert function_schemas(tool)[0]["properties"]["color"] == {
        "enum": ["red", "blue"],
        "default": "red",
    }


def test_an_enum_or_optional_enum_parameter_is_listed_with_its_enum() -> None:
    def tool(
        color: Color, level: Annotated[Level, "how much"] = Level.LOW, maybe: Color | None = None
    ) -> dict[str, Any]:
        raise NotImplementedError

    def plain(text: str, either: Color | Level = Color.RED) -> dict[str, Any]:
        raise NotImplementedError

    assert enum_parameters(tool) == {"color": Color, "level": Level, "maybe": Color}
    assert enum_parameters(plain) == {}


def test_draft7_rewrites_prefix_items_wherever_a_subschema_may_be() -> None:
    pair = type_schema(tuple[int, str])
    schema = {
        "type": "object",
        "properties": {"prefixItems": pair, "enum": {"anyOf": [pair, {"type": "null"}]}},
        "additionalProperties": {"type": "array", "items": pair},
        "default": {"prefixItems": [1], "items": False},
    }
    translated_pair = {
        "type": "array",
        "items": [{"type": "integer"}, {"type": "string"}],
        "additionalItems": False,
        "minItems": 2,
        "maxItems": 2,
    }

    assert draft7(schema) == {
        "type": "object",
        "properties": {
            "prefixItems": translated_pair,
            "enum": {"anyOf": [translated_pair, {"type": "null"}]},
        },
        "additionalProperties": {"type": "array", "items": translated_pair},
        "default": {"prefixItems": [1], "items": False},
    }
    assert schema["properties"]["prefixItems"] == pair  # not changed in place
