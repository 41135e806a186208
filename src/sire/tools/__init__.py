"""The built-in tools (`sire:local/...`), registered on an InProcessServer.

Above: `InProcessDispatcher` and `sire mcp serve`, which serve the registry. Here:
`ToolSettings` (what config.yaml allows) and `builtin_server`. Each tool module
imports its heavy library (jinja2, httpx, jmespath, asyncio) inside the tool, so
importing this package stays cheap for the command line.
"""

from __future__ import annotations

from typing import NamedTuple

from sire.dispatch.inprocess import InProcessServer

MiB = 1024 * 1024


class ToolSettings(NamedTuple):
    """What the built-in tools may do, from `$SIRE_HOME/config.yaml`.

    Attributes:
        exec_allow: executables `exec` may run (names found on PATH, or paths); empty
            turns `exec` off.
        http_allow_hosts: hosts `http.request` may reach: exact names or `*.suffix`
            patterns; None allows any host.
        max_read_bytes: the largest file `file.read` returns.
        max_output_bytes: the most output `http.request` and `exec` capture (per stream).
    """

    exec_allow: tuple[str, ...] = ()
    http_allow_hosts: tuple[str, ...] | None = None
    max_read_bytes: int = 10 * MiB
    max_output_bytes: int = 10 * MiB


def builtin_server(settings: ToolSettings | None = None) -> InProcessServer:
    """An InProcessServer named `sire` with every built-in tool registered."""
    settings = ToolSettings() if settings is None else settings
    from sire.tools import basic, exec, files, http

    server = InProcessServer("sire")
    basic.register(server, settings)
    files.register(server, settings)
    http.register(server, settings)
    exec.register(server, settings)
    return server


__all__ = ["ToolSettings", "builtin_server"]
