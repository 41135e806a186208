"""The SireError tree: every error Sire raises on purpose, and the exit status it maps to.

    SireError
    ├── DefinitionError          a workflow file is wrong (file, line, path)   exit 2
    │   └── CycleError           ... because its steps form a cycle (names it)
    ├── InputError               inputs or command-line values are wrong        exit 2
    ├── TemplateError            a template failed to render (step, path)       step fails
    ├── DispatchError            a tool call failed (tool_uri, retryable)       step fails
    │   ├── ToolError            the tool ran and reported an error
    │   ├── ToolNotFoundError    no such tool, or no dispatcher for its scheme
    │   ├── ToolInputError       the arguments do not match the tool's inputSchema
    │   └── TransportError       the tool could not be reached
    ├── StoreError               the store refused or failed                    exit 3
    │   ├── NotFoundError        no such execution                              exit 2
    │   ├── StaleLeaseError      a write under a lease someone else took over
    │   └── LeaseHeldError       another driver holds the execution's lease
    ├── InvalidTransitionError   the execution cannot do that in its state      exit 2
    └── ConfigError              the environment or config.yaml is wrong        exit 3

`str(error)` is one sentence: where, why, and what to do when that is known.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


class SireError(Exception):
    """Base of every error Sire raises on purpose."""

    exit_code = 1


class DefinitionError(SireError):
    """A workflow definition is invalid.

    Attributes:
        file: the workflow file, when known.
        line: the 1-based line of the offending node, when known.
        path: the offending path inside the document, e.g. ``steps[2].needs[0]``.
        reason: what is wrong, without the location.
        hint: what to do about it, when that is obvious (``did you mean 'greet'?``).
    """

    exit_code = 2

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        line: int | None = None,
        path: str = "",
        hint: str | None = None,
    ) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        self.path = path
        self.hint = hint
        super().__init__(self._format())

    def _format(self) -> str:
        where = self.file or "<workflow>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        at = f" at {self.path}" if self.path else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{where}: {self.reason}{at}{hint}"

    def located(self, file: str | None, line: int | None) -> DefinitionError:
        """Return this error with a file and line filled in where missing."""
        self.file = self.file or file
        self.line = self.line if self.line is not None else line
        self.args = (self._format(),)
        return self


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """`did you mean 'greet'?` when one of `candidates` is close to `name`, else None."""
    from difflib import get_close_matches

    close = get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


class CycleError(DefinitionError):
    """The steps' dependencies form a cycle; ``cycle`` lists it, first step repeated last."""

    def __init__(self, cycle: Sequence[str], **where: object) -> None:
        self.cycle = list(cycle)
        super().__init__(
            "steps form a dependency cycle: " + " -> ".join(self.cycle),
            **where,  # type: ignore[arg-type]
        )


class InputError(SireError):
    """Inputs or command-line values are invalid."""

    exit_code = 2


class TemplateError(SireError):
    """A template could not be rendered (undefined name, sandbox violation, bad syntax)."""


class DispatchError(SireError):
    """A tool call failed.

    Attributes:
        tool_uri: the tool that was called.
        retryable: whether another attempt may succeed.
    """

    def __init__(self, message: str, *, tool_uri: str = "", retryable: bool = True) -> None:
        super().__init__(message)
        self.tool_uri = tool_uri
        self.retryable = retryable


class ToolError(DispatchError):
    """The tool ran and reported an error (MCP ``isError: true``)."""


class ToolNotFoundError(DispatchError):
    """No tool of that name, or no dispatcher for the URI's scheme."""

    def __init__(self, message: str, *, tool_uri: str = "") -> None:
        super().__init__(message, tool_uri=tool_uri, retryable=False)


class ToolInputError(DispatchError):
    """The arguments do not match the tool's ``inputSchema``."""

    def __init__(self, message: str, *, tool_uri: str = "") -> None:
        super().__init__(message, tool_uri=tool_uri, retryable=False)


class TransportError(DispatchError):
    """The tool could not be reached, or the connection broke during the call."""


class StoreError(SireError):
    """The store failed or refused a write."""

    exit_code = 3


class NotFoundError(StoreError):
    """No execution (or other record) with that id."""

    exit_code = 2


class StaleLeaseError(StoreError):
    """A write carried a fencing token that is no longer the execution's current one."""


class LeaseHeldError(StoreError):
    """Another driver holds a live lease on the execution."""


class InvalidTransitionError(SireError):
    """The request does not fit the execution's state (e.g. cancelling a finished one)."""

    exit_code = 2


class ConfigError(SireError):
    """The configuration or the environment is invalid."""

    exit_code = 3
