"""Mock files: canned tool outcomes for `--mock-file`, and `--record` writing them.

A mock file is a YAML mapping. Each key is a step id, a tool URI, or a tool URI pattern
(`mcp:weather#*`, fnmatch); each value is one outcome or a list of them:

    greet: {output: {text: "Hello, Ada!"}}
    save:                                   # one per call; the last one repeats
      - {error: disk full}                  # a tool error, retryable by default
      - {error: reset, kind: transport}
      - {output: {path: out/greeting.txt}}
    "sire:local/exec":                      # what --record writes: by arguments
      - {arguments: {command: [date]}, output: {exit_code: 0, stdout: "..."}}

An outcome has `output` (an object) or `error` (a message, with `kind`: tool, transport,
timeout, input or not_found, and `retryable`), optionally `arguments` (it then answers
only a call with exactly these arguments) and `delay` (a duration waited first). A call
is answered by its step id's entry, else its URI's, else the first matching pattern's;
within an entry, by the first unused outcome whose arguments match, else the last one
that matched. `MockDispatcher` answers from the file and passes the rest to the real
dispatcher, or fails them under `--mock-only`; `Recorder` writes every call it sees.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, NamedTuple

from sire.dispatch.dispatcher import DispatchContext, Dispatcher, MockedOutput
from sire.errors import (
    DispatchError,
    InputError,
    ToolError,
    ToolInputError,
    ToolNotFoundError,
    TransportError,
)
from sire.model.durations import parse_duration
from sire.model.uri import ToolURI
from sire.model.workflow import STEP_ID_PATTERN, ServerSpec, Workflow

_FIELDS = ("output", "error", "kind", "retryable", "arguments", "delay")
_KINDS: dict[str, type[DispatchError]] = {
    "tool": ToolError,
    "transport": TransportError,
    "input": ToolInputError,
    "not_found": ToolNotFoundError,
}
_STEP_ID = re.compile(STEP_ID_PATTERN)


class Outcome(NamedTuple):
    """One canned answer: an output, or an error of some kind."""

    output: Mapping[str, Any] | None = None
    error: str | None = None
    kind: str = "tool"
    retryable: bool = True
    arguments: Mapping[str, Any] | None = None
    delay: float = 0.0

    def matches(self, arguments: Mapping[str, Any]) -> bool:
        return self.arguments is None or _canonical(self.arguments) == _canonical(arguments)


class MockFile:
    """A parsed mock file: outcomes by step id, by tool URI, and by URI pattern."""

    def __init__(self, entries: Mapping[str, list[Outcome]], source: str = "<mocks>") -> None:
        self.source = source
        self.steps = {k: v for k, v in entries.items() if ":" not in k}
        self.tools = {k: v for k, v in entries.items() if ":" in k and not _is_pattern(k)}
        self.patterns = [(k, v) for k, v in entries.items() if ":" in k and _is_pattern(k)]
        self._used: dict[str, set[int]] = {}

    @classmethod
    def load(cls, path: Path) -> MockFile:
        """Read and check a mock file.

        Raises:
            InputError: it cannot be read, is not YAML, or an entry is malformed.
        """
        import yaml

        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError(f"mock file {path}: cannot read it ({exc.strerror})") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InputError(f"mock file {path}: not valid YAML ({yaml_problem(exc)})") from None
        return cls.parse(data if data is not None else {}, str(path))

    @classmethod
    def parse(cls, data: object, source: str = "<mocks>") -> MockFile:
        """Check `data` (a mapping of keys to outcomes) and build the mock file.

        Raises:
            InputError: naming the key and item that is malformed, and why.
        """
        if not isinstance(data, dict):
            raise InputError(
                f"mock file {source}: must map step ids or tool URIs to outcomes, "
                f"not be a {type(data).__name__}"
            )
        entries: dict[str, list[Outcome]] = {}
        for key, value in data.items():
            where = f"mock file {source}: '{key}'"
            if not isinstance(key, str) or not (":" in key or _STEP_ID.match(key)):
                raise InputError(f"{where}: a key is a step id, a tool URI or a URI pattern")
            items = value if isinstance(value, list) else [value]
            if not items:
                raise InputError(f"{where}: an empty list answers nothing; give an outcome")
            entries[key] = [
                _outcome(item, f"{where}[{i}]" if isinstance(value, list) else where)
                for i, item in enumerate(items)
            ]
        return cls(entries, source)

    def check_steps(self, workflow: Workflow) -> None:
        """Refuse step-id keys that name no step of `workflow` (a typo mocks nothing).

        Raises:
            InputError: naming the key, with the closest step id when there is one.
        """
        from difflib import get_close_matches

        ids = [step.id for step in workflow.steps]
        for key in self.steps:
            if key not in ids:
                close = get_close_matches(key, ids, n=1)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                raise InputError(
                    f"mock file {self.source}: '{key}' is not a step of workflow "
                    f"'{workflow.id}'{hint}"
                )

    def answer(self, step_id: str, tool: str, arguments: Mapping[str, Any]) -> Outcome | None:
        """The outcome for this call, or None when the file does not cover it."""
        key = step_id if step_id in self.steps else tool if tool in self.tools else None
        if key is None:
            key = next((k for k, _ in self.patterns if fnmatchcase(tool, k)), None)
            if key is None:
                return None
        outcomes = self.steps.get(key) or self.tools.get(key) or dict(self.patterns)[key]
        used = self._used.setdefault(key, set())
        last: int | None = None
        for index, outcome in enumerate(outcomes):
            if outcome.matches(arguments):
                if index not in used:
                    used.add(index)
                    return outcome
                last = index
        return None if last is None else outcomes[last]


class MockDispatcher:
    """Answers calls from a mock file; passes the rest on, or fails them (`mock_only`)."""

    def __init__(self, inner: Dispatcher, mocks: MockFile | None, *, mock_only: bool) -> None:
        self.inner = inner
        self.mocks = mocks
        self.mock_only = mock_only

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        uri = str(tool)
        outcome = None if self.mocks is None else self.mocks.answer(ctx.step_id, uri, params)
        if outcome is None:
            if self.mock_only:
                raise ToolNotFoundError(
                    f"--mock-only: no mock for step '{ctx.step_id}' calling {uri} with "
                    f"arguments {_canonical(params)}",
                    tool_uri=uri,
                )
            return await self.inner.dispatch(ctx, tool, params)
        if outcome.delay:
            await asyncio.sleep(outcome.delay)
        if outcome.error is None:
            return MockedOutput(outcome.output or {})
        error: Exception
        if outcome.kind == "timeout":
            error = TimeoutError(outcome.error)
        else:
            error = _KINDS[outcome.kind](outcome.error, tool_uri=uri)
            if outcome.kind in ("tool", "transport"):  # input and not_found never retry
                error.retryable = outcome.retryable
        setattr(error, "mocked", True)  # noqa: B010 - read by the engine with getattr
        raise error

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None:
        self.inner.check(tool, servers)

    async def aclose(self) -> None:
        await self.inner.aclose()


class Recorder:
    """Passes every call on and writes each one's arguments and outcome to a mock file.

    Calls are grouped by tool URI in the order they finished, each with its
    `arguments`, so replaying the file answers every call as it was answered, retries
    included. The file is written when the dispatcher closes.
    """

    def __init__(self, inner: Dispatcher, path: Path) -> None:
        self.inner = inner
        self.path = path
        self.calls: dict[str, list[dict[str, Any]]] = {}

    async def dispatch(
        self, ctx: DispatchContext, tool: ToolURI, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        calls = self.calls.setdefault(str(tool), [])
        arguments = json.loads(_canonical(params))
        try:
            output = await self.inner.dispatch(ctx, tool, params)
        except TimeoutError as exc:
            calls.append(
                {"arguments": arguments, "error": str(exc) or "timed out", "kind": "timeout"}
            )
            raise
        except DispatchError as exc:
            kind = next((k for k, cls in _KINDS.items() if type(exc) is cls), "tool")
            error = {"error": str(exc), "kind": kind, "retryable": exc.retryable}
            calls.append({"arguments": arguments, **error})
            raise
        calls.append({"arguments": arguments, "output": json.loads(_canonical(output))})
        return output

    def check(self, tool: ToolURI, servers: Mapping[str, ServerSpec]) -> None:
        self.inner.check(tool, servers)

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            self.write()

    def write(self) -> None:
        import yaml

        header = "# Recorded by `sire run --record`; replay with --mock-file (--mock-only).\n"
        body = yaml.safe_dump(self.calls, sort_keys=False, allow_unicode=True, width=100)
        try:
            self.path.write_text(header + body, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--record {self.path}: cannot write it ({exc.strerror})") from None


def mocking(
    inner: Dispatcher,
    workflow: Workflow,
    mock_file: Path | None,
    mock_only: bool,
    record: Path | None,
) -> Dispatcher:
    """`inner` answered from `mock_file` (all of it under `mock_only`), recorded to `record`.

    Raises:
        InputError: the mock file is malformed or names a step the workflow lacks, or
            --mock-only comes without --mock-file.
    """
    if mock_only and mock_file is None:
        raise InputError("--mock-only: needs --mock-file, the calls it may answer")
    dispatcher = inner
    if mock_file is not None:
        mocks = MockFile.load(mock_file)
        mocks.check_steps(workflow)
        dispatcher = MockDispatcher(inner, mocks, mock_only=mock_only)
    if record is not None:
        dispatcher = Recorder(dispatcher, record)
    return dispatcher


def _outcome(item: object, where: str) -> Outcome:
    if not isinstance(item, dict):
        raise InputError(f"{where}: an outcome is a mapping with `output` or `error`")
    unknown = sorted(set(item) - set(_FIELDS))
    if unknown:
        raise InputError(
            f"{where}: unknown field '{unknown[0]}' (an outcome has {', '.join(_FIELDS)})"
        )
    if ("output" in item) == ("error" in item):
        raise InputError(f"{where}: give exactly one of `output` and `error`")
    output, error = item.get("output"), item.get("error")
    if "output" in item and not isinstance(output, dict):
        raise InputError(f"{where}: `output` must be an object, as tool outputs are")
    if "error" in item and not isinstance(error, str):
        raise InputError(f"{where}: `error` must be a message (a string)")
    kind = item.get("kind", "tool")
    if kind not in (*_KINDS, "timeout"):
        raise InputError(f"{where}: kind '{kind}' is not one of {', '.join((*_KINDS, 'timeout'))}")
    retryable = item.get("retryable", True)
    if not isinstance(retryable, bool):
        raise InputError(f"{where}: `retryable` must be true or false")
    arguments = item.get("arguments")
    if arguments is not None and not isinstance(arguments, dict):
        raise InputError(f"{where}: `arguments` must be an object")
    try:
        delay = parse_duration(item.get("delay", 0))
    except ValueError as exc:
        raise InputError(f"{where}: `delay`: {exc}") from None
    return Outcome(output, error, kind, retryable, arguments, delay)


def yaml_problem(exc: Exception) -> str:
    """PyYAML's complaint in one line: `line N: problem`."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    problem = problem or next(iter(str(exc).splitlines()), type(exc).__name__)
    return f"line {mark.line + 1}: {problem}" if mark is not None else str(problem)


def _is_pattern(key: str) -> bool:
    return any(c in key for c in "*?[")


def _canonical(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
