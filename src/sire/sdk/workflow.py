"""`Workflow`, the SDK's builder: steps, inputs and outputs in Python, compiled through the loader.

A `Workflow` collects a workflow file's data as the user calls `step()`. `to_model()`
writes that data as YAML and loads it with `sire.model.loader.parse_workflow`, the
same function a workflow file goes through, so validation and errors are the YAML
ones; an error inside a step points at the Python line that defined the step. The
model is then emitted (`sire.model.emit`) and loaded once more, so `to_yaml()` is the
model's own text: running the compiled file runs this very model, digest included.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, Literal, NamedTuple, TypeVar, overload

from sire.errors import DefinitionError, did_you_mean
from sire.sdk.refs import Expr, Fields, Ref

if TYPE_CHECKING:
    from sire.model import workflow as model

#: A duration: seconds, or a string such as `250ms`, `30s`, `1m30s`.
Duration = float | str
RetryOn = Literal["error", "timeout", "transport"]
OutputT = TypeVar("OutputT", bound=Expr)
_MISSING: Any = object()


class Retry(NamedTuple):
    """`retry:` of a step (or of every step, given to `Workflow`); defaults as in YAML."""

    max_attempts: int = 3
    initial_interval: Duration = "1s"
    backoff: float = 2.0
    max_interval: Duration = "1m"
    jitter: float = 0.0
    retry_on: tuple[RetryOn, ...] = ("error", "timeout", "transport")


class Call(NamedTuple, Generic[OutputT]):
    """A tool with its arguments, and the type of its output (see `sire.sdk.tools`).

    `Call("mcp:calc#add", {"a": 1, "b": 2}, AddOutput)` types a remote tool's output
    as `AddOutput`, a `Fields` subclass; `Ref` leaves it open.
    """

    tool: str
    params: Mapping[str, Any] | None
    output: type[OutputT]


class Items(Fields):
    """The output of a `for_each` step: `items`, each item's output in order."""

    items: Ref


class Input:
    """An input's JSON Schema: `Input(str, default="world")`, `Input(list[int])`.

    `type` is `str`, `int`, `float`, `bool`, `list`, `dict`, `list[T]` or `dict[str, T]`
    (or None for any value); other JSON Schema keywords pass through as keywords.
    """

    __slots__ = ("schema",)

    def __init__(
        self,
        type: object = None,
        *,
        default: Any = _MISSING,
        description: str | None = None,
        **schema: Any,
    ) -> None:
        self.schema: dict[str, Any] = {} if type is None else _json_type(type)
        self.schema.update(schema)
        if description is not None:
            self.schema["description"] = description
        if default is not _MISSING:
            try:
                self.schema["default"] = _plain(default, "default")
            except DefinitionError as exc:
                raise _relocated(exc, _caller()) from None


class Step(Generic[OutputT]):
    """A step of a `Workflow`: give it to `needs=`, and read its `output`."""

    __slots__ = ("_workflow", "id", "output")

    def __init__(self, step_id: str, output: OutputT, workflow: Workflow) -> None:
        self.id = step_id
        self.output = output
        self._workflow = workflow

    def __repr__(self) -> str:
        return f"Step({self.id!r})"


class Inputs:
    """`wf.inputs.name`: the `Ref` of each declared input."""

    __slots__ = ("_names", "_workflow_id")

    def __init__(self, names: Sequence[str], workflow_id: str) -> None:
        self._names = tuple(names)
        self._workflow_id = workflow_id

    def __getattr__(self, name: str) -> Ref:
        if name.startswith("_") or name not in self._names:
            raise AttributeError(self._unknown(name))
        return Ref(f"inputs.{name}")

    def __getitem__(self, name: str) -> Ref:
        if name not in self._names:
            raise KeyError(self._unknown(name))
        return Ref(f"inputs.{name}")

    def _unknown(self, name: str) -> str:
        hint = did_you_mean(name, self._names)
        declared = ", ".join(self._names) or "none"
        return (
            f"workflow '{self._workflow_id}' declares no input '{name}' "
            f"(inputs: {declared}){'; ' + hint if hint else ''}"
        )

    def __dir__(self) -> list[str]:
        return list(self._names)


class _Where(NamedTuple):
    file: str
    line: int


class Workflow:
    """A workflow defined in Python; `to_model()` and `to_yaml()` compile it.

    Args:
        id: the workflow id (`[a-z0-9][a-z0-9_.-]*`).
        description: one line saying what it does.
        inputs: each input's `Input` (or a JSON Schema mapping), by name.
        servers: named MCP servers, as in YAML: `{"time": {"command": [...]}}`.
        max_concurrency: tool calls at once (default 64).
        retry: the retry policy of every step that gives none (`defaults.retry`).
        timeout: the timeout of every step that gives none (`defaults.timeout`).
    """

    def __init__(
        self,
        id: str,
        *,
        description: str = "",
        inputs: Mapping[str, Input | Mapping[str, Any]] | None = None,
        servers: Mapping[str, Mapping[str, Any]] | None = None,
        max_concurrency: int | None = None,
        retry: Retry | None = None,
        timeout: Duration | None = None,
    ) -> None:
        self.id = id
        self._where = _caller()
        doc: dict[str, Any] = {"id": id}
        if description:
            doc["description"] = description
        try:
            schemas = {
                name: spec.schema if isinstance(spec, Input) else _plain(spec, f"inputs.{name}")
                for name, spec in (inputs or {}).items()
            }
            if servers:
                doc["servers"] = _plain(servers, "servers")
        except DefinitionError as exc:
            raise _relocated(exc, self._where) from None
        if schemas:
            doc["inputs"] = schemas
        defaults: dict[str, Any] = {}
        if retry is not None:
            defaults["retry"] = _retry(retry)
        if timeout is not None:
            defaults["timeout"] = timeout
        if defaults:
            doc["defaults"] = defaults
        if max_concurrency is not None:
            doc["max_concurrency"] = max_concurrency
        self._doc = doc
        self._steps: list[tuple[dict[str, Any], _Where]] = []
        self._handles: dict[str, Step[Any]] = {}
        self._outputs: tuple[dict[str, Any], _Where] | None = None
        self.inputs = Inputs(list(schemas), id)

    def __repr__(self) -> str:
        return f"Workflow({self.id!r}, steps={list(self._handles)})"

    @property
    def outputs(self) -> Mapping[str, Any] | None:
        """The workflow's outputs (templates); None means the outputs of its leaf steps."""
        return None if self._outputs is None else self._outputs[0]

    @outputs.setter
    def outputs(self, value: Mapping[str, Any] | None) -> None:
        where = _caller()
        if value is None:
            self._outputs = None
            return
        try:
            self._outputs = (_plain(value, "outputs"), where)
        except DefinitionError as exc:
            raise _relocated(exc, where) from None

    @overload
    def step(
        self,
        id: str,
        tool: Call[OutputT],
        /,
        *,
        needs: Sequence[Step[Any]] = (),
        needs_any: bool = False,
        when: Expr | str | None = None,
        for_each: None = None,
        retry: Retry | None = None,
        timeout: Duration | None = None,
        description: str = "",
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
    ) -> Step[OutputT]: ...

    @overload
    def step(
        self,
        id: str,
        tool: Call[Any],
        /,
        *,
        needs: Sequence[Step[Any]] = (),
        needs_any: bool = False,
        when: Expr | str | None = None,
        for_each: Expr | str,
        max_concurrency: int | None = None,
        retry: Retry | None = None,
        timeout: Duration | None = None,
        description: str = "",
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
    ) -> Step[Items]: ...

    @overload
    def step(
        self,
        id: str,
        tool: str,
        params: Mapping[str, Any] | None = None,
        /,
        *,
        needs: Sequence[Step[Any]] = (),
        needs_any: bool = False,
        when: Expr | str | None = None,
        for_each: Expr | str | None = None,
        max_concurrency: int | None = None,
        retry: Retry | None = None,
        timeout: Duration | None = None,
        description: str = "",
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
    ) -> Step[Ref]: ...

    def step(
        self,
        id: str,
        tool: Call[Any] | str,
        params: Mapping[str, Any] | None = None,
        /,
        *,
        needs: Sequence[Step[Any]] = (),
        needs_any: bool = False,
        when: Expr | str | None = None,
        for_each: Expr | str | None = None,
        max_concurrency: int | None = None,
        retry: Retry | None = None,
        timeout: Duration | None = None,
        description: str = "",
        input_schema: Mapping[str, Any] | None = None,
        output_schema: Mapping[str, Any] | None = None,
    ) -> Step[Any]:
        """Add a step calling `tool`, and return its handle.

        `tool` is a `Call` (typed: see `sire.sdk.tools`) or a tool URI with its
        `params` (the YAML `with:`; None gives the step the inputs overlaid by its
        parents' outputs). `when` is the YAML `if:`. Values may hold expressions
        (`other.output.text`, `wf.inputs.name`, f-strings of them) anywhere.

        Raises:
            DefinitionError: the id is taken, or a value cannot be written in a workflow.
        """
        where = _caller()
        here = f"steps[{len(self._steps)}]"
        options = {
            "needs_any": needs_any or None,
            "description": description or None,
            "if": _template(when),
            "for_each": _template(for_each),
            "max_concurrency": max_concurrency,
            "retry": None if retry is None else _retry(retry),
            "timeout": timeout,
            "input_schema": input_schema,
            "output_schema": output_schema,
        }
        try:
            doc = self._step_document(id, tool, params, needs, here)
            doc.update({k: _plain(v, f"{here}.{k}") for k, v in options.items() if v is not None})
        except DefinitionError as exc:
            raise _relocated(exc, where) from None
        output: Expr
        source = f"steps.{id}.output"
        if for_each is not None and isinstance(tool, Call):
            output = Items(source)
        elif isinstance(tool, Call):
            output = tool.output(source)
        else:
            output = Ref(source)
        handle: Step[Any] = Step(id, output, self)
        self._steps.append((doc, where))
        self._handles[id] = handle
        return handle

    def _step_document(
        self,
        step_id: str,
        tool: Call[Any] | str,
        params: Mapping[str, Any] | None,
        needs: Sequence[Step[Any]],
        here: str,
    ) -> dict[str, Any]:
        if step_id in self._handles:
            raise DefinitionError(f"step id '{step_id}' is already used", path=f"{here}.id")
        if isinstance(tool, Call):
            if params is not None:
                raise DefinitionError("a typed call already carries its params", path=here)
            uri, params = tool.tool, tool.params
        elif isinstance(tool, str):
            uri = tool
        else:
            raise DefinitionError(
                f"tool must be a tool URI or a Call, not {type(tool).__name__}", path=f"{here}.tool"
            )
        doc: dict[str, Any] = {"id": step_id, "tool": uri}
        if needs:
            doc["needs"] = [self._need(n, f"{here}.needs[{i}]") for i, n in enumerate(needs)]
        if params is not None:
            doc["with"] = _plain(params, f"{here}.with")
        return doc

    def _need(self, handle: object, path: str) -> str:
        if not isinstance(handle, Step):
            raise DefinitionError(
                f"needs takes steps returned by step(), not {type(handle).__name__}", path=path
            )
        if self._handles.get(handle.id) is not handle:
            raise DefinitionError(
                f"step '{handle.id}' belongs to another workflow ('{handle._workflow.id}')",
                path=path,
            )
        return handle.id

    def document(self) -> dict[str, Any]:
        """The workflow as the plain data of a YAML file, before validation."""
        doc = {**self._doc, "steps": [step for step, _ in self._steps]}
        if self._outputs is not None:
            doc["outputs"] = self._outputs[0]
        return doc

    def to_model(self) -> model.Workflow:
        """Validate and compile: the `Workflow` the loader makes of `to_yaml()`'s text.

        Raises:
            DefinitionError: the workflow is invalid; file and line are the Python
                definition of the offending step (or of the workflow).
        """
        from sire.model.emit import dump_yaml, emit_workflow
        from sire.model.loader import parse_workflow

        try:
            first = parse_workflow(dump_yaml(self.document()))
        except DefinitionError as exc:
            raise self._locate(exc) from None
        return parse_workflow(emit_workflow(first))

    def to_yaml(self) -> str:
        """The workflow file's text (what `sire workflow compile` prints).

        Raises:
            DefinitionError: the workflow is invalid.
        """
        return self.to_model().text

    def _locate(self, exc: DefinitionError) -> DefinitionError:
        match = re.match(r"steps\[(\d+)\]", exc.path)
        if match and int(match[1]) < len(self._steps):
            where = self._steps[int(match[1])][1]
        elif exc.path.startswith("outputs") and self._outputs is not None:
            where = self._outputs[1]
        else:
            where = self._where
        return _relocated(exc, where)


def _relocated(exc: DefinitionError, where: _Where) -> DefinitionError:
    """`exc` pointing at the Python line `where` instead of a line of generated YAML."""
    exc.file, exc.line = None, None
    return exc.located(where.file, where.line)


def _caller() -> _Where:
    """The user's file and line that called into this module."""
    frame = sys._getframe(1)
    while frame.f_back is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back
    file = frame.f_code.co_filename
    try:
        relative = os.path.relpath(file)
    except ValueError:  # another drive, on Windows
        relative = file
    return _Where(file if relative.startswith("..") else relative, frame.f_lineno)


def _retry(policy: Retry) -> dict[str, Any]:
    doc = policy._asdict()
    doc["retry_on"] = list(policy.retry_on)
    return doc


def _template(value: object) -> object:
    """`when=`/`for_each=`: an expression is written as `{{ … }}`, a string as it is."""
    return str(value) if isinstance(value, Expr) else value


def _plain(value: Any, path: str) -> Any:
    """`value` as YAML data: expressions become templates, tuples lists.

    Raises:
        DefinitionError: `value` holds something a workflow file cannot (a step handle,
            an object, a mapping with a key that is not a string).
    """
    if isinstance(value, Expr):
        return str(value)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise DefinitionError(f"mapping key {key!r} is not a string", path=path)
            out[key] = _plain(item, f"{path}.{key}")
        return out
    if isinstance(value, list | tuple):
        return [_plain(item, f"{path}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, Step):
        raise DefinitionError(
            f"{value!r} is a step, not a value; use its output (step.output.<field>)", path=path
        )
    raise DefinitionError(
        f"a {type(value).__name__} cannot be written in a workflow "
        "(use str, int, float, bool, None, lists, dicts and expressions)",
        path=path,
    )


_JSON_TYPES: dict[object, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}


def _json_type(tp: object) -> dict[str, Any]:
    """The JSON Schema of a Python type annotation (`list[int]`: an array of integers)."""
    from typing import get_args, get_origin

    origin, args = get_origin(tp), get_args(tp)
    if origin is list and len(args) == 1:
        return {"type": "array", "items": _json_type(args[0])}
    if origin is dict and len(args) == 2 and args[0] is str:
        return {"type": "object", "additionalProperties": _json_type(args[1])}
    if tp in _JSON_TYPES:
        return {"type": _JSON_TYPES[tp]}
    raise TypeError(
        f"Input({tp!r}): the type is one of str, int, float, bool, list, dict, "
        "list[T] or dict[str, T]; pass other JSON Schema keywords as keywords"
    )
