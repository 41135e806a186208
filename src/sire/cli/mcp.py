"""`sire mcp serve`: Sire's built-in tools, and workflows as tools, served over MCP.

Everything that can be wrong is checked before serving: each workflow (a definition
error, exit 2), tool names (a workflow whose id clashes with another tool, exit 2), the
workspace (exit 2) and the port (in use: exit 3). The MCP SDK is imported only then.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from sire.cli.common import DbOption, VerboseFlag

mcp_app = typer.Typer(help="Serve Sire over MCP.", no_args_is_help=True)

TRANSPORTS = ("stdio", "http")
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765


@mcp_app.command("serve")
def serve(
    transport: Annotated[
        str, typer.Option("--transport", "-t", help="stdio, or http (Streamable HTTP at /mcp).")
    ] = "stdio",
    host: Annotated[str, typer.Option("--host", help="Address to listen on (http).")] = (
        DEFAULT_HOST
    ),
    port: Annotated[
        int, typer.Option("--port", "-p", help="Port to listen on (http); 0 picks a free one.")
    ] = DEFAULT_PORT,
    workflows: Annotated[
        list[Path] | None,
        typer.Option(
            "--workflow",
            "-w",
            help="A workflow to serve as the tool named by its id (repeatable).",
            show_default=False,
        ),
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", help="Directory tools' files live in [default: here]."),
    ] = None,
    db: DbOption = None,
    verbose: VerboseFlag = False,
) -> None:
    """Serve the built-in tools, and each --workflow as one tool, over MCP."""
    import asyncio

    from sire.cli import runtime
    from sire.config import load_config
    from sire.errors import InputError
    from sire.model.loader import load_workflow
    from sire.serve import Catalog, WorkflowRunner, WorkflowTool
    from sire.serve.transports import bind, serve
    from sire.tools import builtin_server

    if transport not in TRANSPORTS:
        raise InputError(f"--transport {transport}: expected one of {', '.join(TRANSPORTS)}")
    if not 0 <= port <= 65535:
        raise InputError(f"--port {port}: expected a port number from 0 to 65535")
    config = load_config()
    root = (workspace or Path.cwd()).resolve()
    if not root.is_dir():
        raise InputError(f"--workspace {workspace}: not a directory")
    mux = runtime.build_dispatcher(config)
    loaded = []
    for file in workflows or []:
        workflow = load_workflow(file, cache_dir=config.cache_dir)
        runtime.check_workflow(workflow, mux, config)
        loaded.append(workflow)
    runner = WorkflowRunner(config, mux, workspace=root, db=db) if loaded else None
    served = [WorkflowTool(workflow, runner) for workflow in loaded] if runner else []
    catalog = Catalog.of(builtin_server(runtime.tool_settings(config)), served, workspace=str(root))
    sock = bind(host, port) if transport == "http" else None
    logging.basicConfig(
        stream=sys.stderr,
        level=logging.DEBUG if verbose else logging.WARNING,
        format="sire: %(levelname)s %(name)s: %(message)s",
    )
    try:
        # Room for the JSON-RPC framing around a payload at the configured limit.
        max_body = config.max_payload_bytes + 1024 * 1024
        asyncio.run(serve(catalog, runner, sock=sock, host=host, max_body_bytes=max_body))
    finally:
        if sock is not None:
            sock.close()
    raise typer.Exit(0)
