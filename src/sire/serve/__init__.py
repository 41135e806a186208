"""Exposing Sire over MCP: `sire mcp serve` serves the built-in tools and workflows as tools.

What it owns: the catalog of served tools (`catalog`: built-in tools under their own
names, each workflow under its id, name clashes refused at start-up), running a workflow
as one durable execution per call (`workflows`), the official MCP SDK's low-level server
over that catalog (`protocol`), and the stdio and Streamable HTTP transports
(`transports`). Above: the `sire mcp serve` command (`sire.cli.mcp`). Below: the
InProcessServer of built-in tools, the engine and the store. Only `protocol` and
`transports` load the SDK, and only when a server is started.
"""

from __future__ import annotations

from sire.serve.catalog import BuiltinTool, Call, Catalog, Outcome, ServedTool
from sire.serve.workflows import WorkflowRunner, WorkflowTool

__all__ = [
    "BuiltinTool",
    "Call",
    "Catalog",
    "Outcome",
    "ServedTool",
    "WorkflowRunner",
    "WorkflowTool",
]
