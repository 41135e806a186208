"""The typed workflow the engine runs: frozen values built by `sire.model.loader`.

`sire.model.format` holds the pydantic models of the YAML format (validation and the
JSON Schema); they are converted into these plain values once, so running a cached
workflow needs neither YAML nor pydantic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from sire.model.uri import ToolURI

STEP_ID_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
WORKFLOW_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]*$"
DEFAULT_MAX_CONCURRENCY = 64

# Values are NamedTuples, not frozen dataclasses: as immutable, and each class costs
# 0.3 ms to create instead of 2 ms, which `sire run` pays at every start.
_EMPTY: Mapping[str, Any] = {}  # shared default: never mutated


class RetryPolicy(NamedTuple):
    """How a failed attempt is retried: exponential backoff, capped, with optional jitter.

    `retry_on` names the failures worth another attempt: `error` (the tool reported
    one), `timeout` (the step's timeout), `transport` (the tool could not be reached).
    Definition, template and argument-validation errors are never retried.
    """

    max_attempts: int = 1
    initial_interval: float = 1.0
    backoff: float = 2.0
    max_interval: float = 60.0
    jitter: float = 0.0
    retry_on: frozenset[str] = frozenset({"error", "timeout", "transport"})


NO_RETRY = RetryPolicy()


class ServerSpec(NamedTuple):
    """A named MCP server: Streamable HTTP (`url`) or a stdio process (`command`)."""

    url: str | None = None
    headers: Mapping[str, str] = _EMPTY
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = _EMPTY
    cwd: str | None = None


class Step(NamedTuple):
    """One step: a tool call with its parameters and its place in the DAG.

    `depends` holds every step this one waits for: `needs` first, in order, then the
    steps its templates read. `params` is the `with:` mapping (None when absent).
    """

    id: str
    tool: ToolURI
    params: Mapping[str, Any] | None = None
    needs: tuple[str, ...] = ()
    depends: tuple[str, ...] = ()
    needs_any: bool = False
    when: str | None = None
    for_each: str | None = None
    max_concurrency: int | None = None
    retry: RetryPolicy = NO_RETRY
    timeout: float | None = None
    input_schema: Mapping[str, Any] | None = None
    output_schema: Mapping[str, Any] | None = None
    description: str = ""


class Workflow(NamedTuple):
    """A validated workflow definition.

    Attributes:
        digest: sha256 of the source text; executions are pinned to it.
        text: the source text, stored with executions so a resume runs what started.
        source: the file it was loaded from, for error messages.
        lines: the 1-based line of each node, by path (`steps[2].with.path`).
    """

    id: str
    steps: tuple[Step, ...]
    description: str = ""
    inputs: Mapping[str, Mapping[str, Any]] = _EMPTY
    servers: Mapping[str, ServerSpec] = _EMPTY
    outputs: Mapping[str, Any] | None = None
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    digest: str = ""
    text: str = ""
    source: str | None = None
    lines: Mapping[str, int] = _EMPTY

    def step(self, step_id: str) -> Step:
        """The step with that id.

        Raises:
            KeyError: there is none.
        """
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def line(self, path: str) -> int | None:
        """The line of the node at `path`, or of its nearest located ancestor."""
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.lines.get("")
