"""echo, text.template, json.query and sleep, called through the in-process dispatcher."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from sire.errors import ToolError, ToolInputError

Call = Callable[..., Awaitable[dict[str, Any]]]


async def test_echo_returns_its_arguments_unchanged(call: Call) -> None:
    params = {"a": 1, "b": [1, "two", None], "c": {"d": True}}

    assert await call("echo", params) == params


async def test_echo_returns_a_copy_not_the_arguments_themselves(call: Call) -> None:
    params = {"a": 1}

    result = await call("echo", params)
    result["a"] = 2

    assert params == {"a": 1}


async def test_text_template_without_data_returns_the_template_verbatim(call: Call) -> None:
    template = "Hello, {{ name }}! {% if x %}{{ 7 * 7 }}{% endif %}"

    assert await call("text.template", {"template": template}) == {"text": template}


async def test_text_template_renders_with_data(call: Call) -> None:
    result = await call(
        "text.template",
        {
            "template": "Hello, {{ name }}! {{ items | join(', ') }}",
            "data": {"name": "world", "items": [1, 2]},
        },
    )

    assert result == {"text": "Hello, world! 1, 2"}


async def test_text_template_does_not_render_templates_found_in_data(call: Call) -> None:
    result = await call(
        "text.template", {"template": "{{ name }}", "data": {"name": "{{ 7 * 7 }}"}}
    )

    assert result == {"text": "{{ 7 * 7 }}"}


async def test_text_template_undefined_variable_is_a_tool_error_naming_it(call: Call) -> None:
    with pytest.raises(ToolError, match="'missing' is undefined") as caught:
        await call("text.template", {"template": "{{ missing }}", "data": {}})

    assert caught.value.tool_uri == "sire:local/text.template"


async def test_text_template_syntax_error_is_a_tool_error_with_the_line(call: Call) -> None:
    with pytest.raises(ToolError, match="line 2"):
        await call("text.template", {"template": "ok\n{{ oops ", "data": {}})


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os }}",
        "{{ x.__class__ }}",
        "{{ x.update({'a': 1}) }}",
        "{{ items.append(1) }}",
        "{{ 'a' * 1000000000 }}",
        "{{ 10 ** 100000000 }}",
    ],
)
async def test_text_template_refuses_sandbox_escapes_and_bombs(call: Call, template: str) -> None:
    with pytest.raises(ToolError, match=r"^text\.template: "):
        await call("text.template", {"template": template, "data": {"x": {}, "items": []}})


async def test_text_template_requires_a_string_template(call: Call) -> None:
    with pytest.raises(ToolInputError, match="template"):
        await call("text.template", {"template": 3})


async def test_json_query_selects_with_jmespath(call: Call) -> None:
    data = {"people": [{"name": "ann", "age": 31}, {"name": "bob", "age": 25}]}

    result = await call("json.query", {"data": data, "query": "people[?age > `30`].name"})

    assert result == {"result": ["ann"]}


async def test_json_query_returns_null_when_nothing_matches(call: Call) -> None:
    assert await call("json.query", {"data": {}, "query": "a.b"}) == {"result": None}


async def test_json_query_bad_expression_is_a_tool_error(call: Call) -> None:
    with pytest.raises(ToolError, match="not a valid query"):
        await call("json.query", {"data": {}, "query": "people[?"})


async def test_json_query_requires_a_query(call: Call) -> None:
    with pytest.raises(ToolInputError, match="query"):
        await call("json.query", {"data": {}})


@pytest.mark.parametrize(("seconds", "slept"), [(0, 0.0), (0.01, 0.01), ("10ms", 0.01)])
async def test_sleep_accepts_seconds_or_a_duration(
    call: Call, seconds: float | str, slept: float
) -> None:
    assert await call("sleep", {"seconds": seconds}) == {"slept": pytest.approx(slept)}


@pytest.mark.parametrize("seconds", [-1, "soon", "-5s", "nan", "inf"])
async def test_sleep_refuses_negative_or_malformed_durations(
    call: Call, seconds: float | str
) -> None:
    with pytest.raises(ToolError, match=r"^sleep: "):
        await call("sleep", {"seconds": seconds})


async def test_sleep_refuses_a_boolean(call: Call) -> None:
    with pytest.raises((ToolInputError, ToolError)):
        await call("sleep", {"seconds": True})


async def test_sleep_is_cancellable(call: Call) -> None:
    task = asyncio.create_task(call("sleep", {"seconds": 60}))
    await asyncio.sleep(0)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
