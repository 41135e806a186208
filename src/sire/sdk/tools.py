"""Typed calls of the built-in tools (`sire:local/…`): each output's fields are known to mypy.

    greet = wf.step("greet", text_template(template=f"Hello, {wf.inputs.name}!"))
    greet.output.text    # Ref: renders {{ steps.greet.output.text }}
    greet.output.txt     # a type error, and an AttributeError when run

The output classes mirror the tools' output schemas (`sire tool list --json`).
Arguments left as None are not written, so the tool's own default applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sire.sdk.refs import Expr, Fields, Ref
from sire.sdk.workflow import Call

# An argument is a value or an expression rendered when the step runs.
Text = str | Expr


class TemplateOutput(Fields):
    """`text.template`: the rendered text."""

    text: Ref


class QueryOutput(Fields):
    """`json.query`: what the JMESPath expression selected."""

    result: Ref


class ReadOutput(Fields):
    """`file.read`: the file's path in the workspace, its text and its size in bytes."""

    path: Ref
    content: Ref
    size: Ref


class WriteOutput(Fields):
    """`file.write`: the file's path in the workspace and the bytes written."""

    path: Ref
    bytes: Ref


class ExecOutput(Fields):
    """`exec`: how the program ended and what it wrote."""

    exit_code: Ref
    stdout: Ref
    stderr: Ref


class HttpOutput(Fields):
    """`http.request`: status, headers, body text, and `json` when the body is JSON."""

    status: Ref
    headers: Ref
    text: Ref
    json: Ref


class SleepOutput(Fields):
    """`sleep`: how long the tool slept, in seconds."""

    slept: Ref


def echo(**params: Any) -> Call[Ref]:
    """`sire:local/echo`: returns its arguments, so any field may be read."""
    return Call("sire:local/echo", params, Ref)


def text_template(
    template: Text, data: Mapping[str, Any] | Expr | None = None
) -> Call[TemplateOutput]:
    """`sire:local/text.template`: render `template` (a Jinja template) with `data`."""
    return Call("sire:local/text.template", _given(template=template, data=data), TemplateOutput)


def json_query(data: Any, query: Text) -> Call[QueryOutput]:
    """`sire:local/json.query`: select from `data` with a JMESPath `query`."""
    return Call("sire:local/json.query", {"data": data, "query": query}, QueryOutput)


def file_read(path: Text, encoding: Text | None = None) -> Call[ReadOutput]:
    """`sire:local/file.read`: read a text file in the workspace."""
    return Call("sire:local/file.read", _given(path=path, encoding=encoding), ReadOutput)


def file_write(
    path: Text,
    content: Text,
    append: bool | Expr | None = None,
    make_dirs: bool | Expr | None = None,
) -> Call[WriteOutput]:
    """`sire:local/file.write`: write text to a file in the workspace."""
    params = _given(path=path, content=content, append=append, make_dirs=make_dirs)
    return Call("sire:local/file.write", params, WriteOutput)


def exec_(
    command: Sequence[Text] | Expr,
    stdin: Text | None = None,
    cwd: Text | None = None,
    env: Mapping[str, Text] | None = None,
    timeout: float | Expr | None = None,
) -> Call[ExecOutput]:
    """`sire:local/exec`: run a program that config.yaml allows (`exec.allow`), no shell."""
    params = _given(command=command, stdin=stdin, cwd=cwd, env=env, timeout=timeout)
    return Call("sire:local/exec", params, ExecOutput)


def http_request(
    url: Text,
    method: Text | None = None,
    headers: Mapping[str, Text] | None = None,
    body: Text | None = None,
    json: Any = None,
    timeout: float | Expr | None = None,
) -> Call[HttpOutput]:
    """`sire:local/http.request`: send an HTTP request; a 4xx or 5xx status is no error."""
    params = _given(url=url, method=method, headers=headers, body=body, json=json, timeout=timeout)
    return Call("sire:local/http.request", params, HttpOutput)


def sleep(seconds: float | Text) -> Call[SleepOutput]:
    """`sire:local/sleep`: wait `seconds` (a number or a duration such as `250ms`)."""
    return Call("sire:local/sleep", {"seconds": seconds}, SleepOutput)


def _given(**params: Any) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}
