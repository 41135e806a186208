"""Tool URIs: `scheme:target/tool` or `scheme:target#tool`, parsed and formatted.

The model parses any scheme; which schemes and named servers exist is decided at
the edge (`sire.dispatch.mux`), when a workflow is validated or run.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*\Z")
_TOOL = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,127}\Z")


class URIError(ValueError):
    """A string is not a tool URI; the message says why."""


class ToolURI(NamedTuple):
    """A parsed tool URI.

    Attributes:
        scheme: `sire`, `mcp`, `jsonrpc`, or a plugin's scheme.
        target: where the tool lives: `local`, a server name, or an endpoint URL.
        tool: the tool's name on that target, e.g. `file.write`.
        sep: `#` or `/`, whichever separated target and tool.
    """

    scheme: str
    target: str
    tool: str
    sep: str = "#"

    def __str__(self) -> str:
        return f"{self.scheme}:{self.target}{self.sep}{self.tool}"

    @property
    def is_url(self) -> bool:
        """Whether the target is an endpoint URL rather than a name."""
        return "://" in self.target

    @classmethod
    def parse(cls, text: str) -> ToolURI:
        """Parse `text`.

        Raises:
            URIError: `text` is not `scheme:target#tool` or `scheme:target/tool`.
        """
        scheme, colon, rest = text.partition(":")
        if not colon or not _SCHEME.match(scheme):
            raise URIError(f"'{text}' is not a tool URI (expected scheme:target#tool)")
        if "#" in rest:
            target, _, tool = rest.rpartition("#")
            sep = "#"
        elif "/" in rest and "://" not in rest:
            target, _, tool = rest.partition("/")
            sep = "/"
        else:
            raise URIError(f"'{text}' names no tool (expected {scheme}:target#tool)")
        if not target:
            raise URIError(f"'{text}' names no server or target before '{sep}'")
        if not _TOOL.match(tool):
            raise URIError(
                f"'{text}' has an invalid tool name '{tool}' "
                "(letters, digits, '_', '-', '.', '/'; at most 128)"
            )
        return cls(scheme, target, tool, sep)
