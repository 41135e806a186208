"""`import sire.dispatch.remote` must not load the MCP SDK, which takes over a second."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_remote_dispatcher_does_not_load_the_sdk() -> None:
    code = (
        "import sys, sire.dispatch.remote, sire.dispatch.mcp.mapping;"
        "loaded = sorted(m for m in ('mcp', 'mcp_types', 'httpx2', 'anyio') if m in sys.modules);"
        "print(','.join(loaded))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == ""
