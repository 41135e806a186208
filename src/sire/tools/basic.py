"""The small built-in tools: `echo`, `text.template`, `json.query` and `sleep`."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

from sire.errors import ToolError
from sire.model.durations import parse_duration

if TYPE_CHECKING:
    from sire.dispatch.inprocess import InProcessServer
    from sire.tools import ToolSettings


class TemplateOutput(TypedDict):
    """The rendered text."""

    text: str


class QueryOutput(TypedDict):
    """What the JMESPath expression selected (null when nothing matched)."""

    result: Any


class SleepOutput(TypedDict):
    """How long the tool slept, in seconds."""

    slept: float


def echo(**params: Any) -> dict[str, Any]:
    """Return the arguments unchanged."""
    return dict(params)


def template_tool(settings: ToolSettings) -> Callable[..., TemplateOutput]:
    """The `text.template` tool, in the workflow templates' sandbox (`sire.engine.sandbox`).

    Its values and output are capped at `settings.max_output_bytes`.
    """

    def text_template(template: str, data: dict[str, Any] | None = None) -> TemplateOutput:
        """Render a Jinja2 template with `data` in a sandbox; without `data`, return it as is.

        Args:
            template: the text; `{{ name }}` refers to a key of `data`.
            data: the template's variables; omit it to return `template` unchanged.
        """
        if data is None:
            # The engine rendered the step's `with:` already; rendering the result again
            # would evaluate any `{{` that came in through an input.
            return {"text": template}
        from sire.engine.sandbox import bounded, environment

        try:
            compiled = environment(settings.max_output_bytes).from_string(template)
            text = bounded(lambda: compiled.render(data))
        except Exception as exc:
            raise ToolError(f"text.template: {_jinja_message(exc)}") from exc
        return {"text": text}

    return text_template


def json_query(data: Any, query: str) -> QueryOutput:
    """Select from JSON data with a JMESPath expression.

    Args:
        data: any JSON value.
        query: a JMESPath expression, e.g. items[0].name or people[*].age.
    """
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        return {"result": jmespath.search(query, data)}
    except JMESPathError as exc:
        reason = " ".join(str(exc).split())
        raise ToolError(f"json.query: {query!r} is not a valid query: {reason}") from None


async def sleep(seconds: float | str) -> SleepOutput:
    """Wait, then return; cancellable.

    Args:
        seconds: a number of seconds or a duration such as `250ms`, `30s` or `1m30s`.
    """
    import asyncio

    try:
        duration = parse_duration(seconds)
    except ValueError as exc:
        raise ToolError(f"sleep: {exc}") from None
    if not math.isfinite(duration):
        raise ToolError(f"sleep: {seconds!r} is not a finite duration")
    await asyncio.sleep(duration)
    return {"slept": duration}


def _jinja_message(exc: Exception) -> str:
    from jinja2 import TemplateSyntaxError

    if isinstance(exc, TemplateSyntaxError):
        return f"line {exc.lineno}: {exc.message}"
    return str(exc) or type(exc).__name__


def register(server: InProcessServer, settings: ToolSettings) -> None:
    """Register `echo`, `text.template`, `json.query` and `sleep` on `server`."""
    server.add_tool(echo, name="echo")
    server.add_tool(template_tool(settings), name="text.template")
    server.add_tool(json_query, name="json.query")
    server.add_tool(sleep, name="sleep")
