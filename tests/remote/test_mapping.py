"""The pure mapping between Sire calls and MCP messages: `_meta`, argument checks, results."""

from __future__ import annotations

import re
from typing import Any

import fastjsonschema
import mcp_types as types
import pytest

from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.mcp.mapping import (
    argument_problem,
    compile_arguments,
    output_of,
    request_meta,
)

VALID = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def ctx(**fields: Any) -> DispatchContext:
    return DispatchContext(execution_id="e", step_id="s", **fields)


def text(value: str) -> types.TextContent:
    return types.TextContent(type="text", text=value)


def test_meta_carries_the_idempotency_key_and_a_random_valid_traceparent() -> None:
    first = request_meta(ctx(idempotency_key="e/s/3"))
    second = request_meta(ctx(idempotency_key="e/s/3"))
    assert first["sire/idempotency-key"] == "e/s/3"
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", first["traceparent"])
    assert first["traceparent"] != second["traceparent"]


def test_meta_keeps_a_valid_traceparent_with_its_tracestate() -> None:
    meta = request_meta(ctx(trace_context={"traceparent": VALID, "tracestate": "a=1"}))
    assert meta == {"traceparent": VALID, "tracestate": "a=1"}


@pytest.mark.parametrize(
    "bad",
    [
        "garbage",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # all-zero trace id
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # all-zero span id
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # forbidden version
        VALID.upper(),
    ],
)
def test_meta_replaces_an_invalid_traceparent_and_drops_its_tracestate(bad: str) -> None:
    meta = request_meta(ctx(trace_context={"traceparent": bad, "tracestate": "a=1"}))
    assert meta["traceparent"] != bad
    assert "tracestate" not in meta


def test_structured_content_is_the_output_even_beside_text() -> None:
    result = types.CallToolResult(content=[text("ignored")], structured_content={"n": 1})
    assert output_of(result) == {"n": 1}


def test_structured_content_that_is_not_an_object_is_wrapped_as_result() -> None:
    assert output_of(types.CallToolResult(content=[], structured_content=[1, 2])) == {
        "result": [1, 2]
    }


def test_a_single_text_block_holding_a_json_object_is_that_object() -> None:
    result = types.CallToolResult(content=[text('  {"a": [1, 2]}\n')])
    assert output_of(result) == {"a": [1, 2]}


@pytest.mark.parametrize("body", ["[1, 2]", "{not json", '"a string"', "42"])
def test_text_that_is_not_a_json_object_maps_to_text_and_content(body: str) -> None:
    assert output_of(types.CallToolResult(content=[text(body)])) == {
        "text": body,
        "content": [{"type": "text", "text": body}],
    }


def test_several_blocks_map_to_joined_text_and_every_block() -> None:
    image = types.ImageContent(type="image", data="aGk=", mime_type="image/png")
    result = types.CallToolResult(content=[text('{"a": 1}'), image, text("second")])
    assert output_of(result) == {
        "text": '{"a": 1}\nsecond',
        "content": [
            {"type": "text", "text": '{"a": 1}'},
            {"type": "image", "data": "aGk=", "mimeType": "image/png"},
            {"type": "text", "text": "second"},
        ],
    }


SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "a": {"type": "integer"},
        "point": {"type": "object", "properties": {"x": {"type": "number"}}},
        "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
    },
    "required": ["a", "b"],
}


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ({}, "missing arguments 'a', 'b'"),
        ({"a": 1}, "missing argument 'b'"),
        ({"a": "1", "b": 0}, "argument 'a' must be integer"),
        ({"a": 1, "b": 0, "point": {"x": "far"}}, "argument 'point.x' must be number"),
        ({"a": 1, "b": 0, "pair": ["x", "y"]}, "argument 'pair[1]' must be integer"),
    ],
)
def test_argument_problems_name_the_argument(arguments: dict[str, Any], problem: str) -> None:
    validate = compile_arguments(SCHEMA, "t")
    assert validate is not None
    with pytest.raises(fastjsonschema.JsonSchemaException) as caught:
        validate(arguments)
    assert argument_problem(caught.value) == problem


def test_schemas_that_cannot_be_checked_locally_are_left_to_the_server() -> None:
    remote_ref = {"type": "object", "properties": {"a": {"$ref": "https://example.invalid/a"}}}
    assert compile_arguments(remote_ref, "t") is None
    assert compile_arguments({"type": "no-such-type"}, "t") is None


def test_argument_checks_leave_the_arguments_as_sent() -> None:
    schema = {
        "type": "object",
        "properties": {"n": {"type": "integer", "default": 3}, "url": {"format": "uri"}},
    }
    validate = compile_arguments(schema, "t")
    assert validate is not None
    arguments = {"url": "not a uri"}  # formats are the server's to judge
    validate(arguments)
    assert arguments == {"url": "not a uri"}  # no default filled in: the server applies its own
