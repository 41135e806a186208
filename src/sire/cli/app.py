"""The `sire` commands (Typer). Each returns an exit status; `sire.cli.main` maps errors."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from sire.cli.common import FileArgument, JsonFlag, VerboseFlag, emit_json
from sire.cli.executions import agent_app, execution_app
from sire.cli.mcp import mcp_app
from sire.cli.run import run
from sire.cli.secrets import secret_app
from sire.cli.testing import init, run_tests
from sire.config import load_config

app = typer.Typer(
    name="sire",
    help="Run workflows of MCP tools: fast, durable, in the open.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
workflow_app = typer.Typer(help="Validate, draw and run workflow files.", no_args_is_help=True)
tool_app = typer.Typer(help="Inspect the tools workflows can call.", no_args_is_help=True)
app.add_typer(workflow_app, name="workflow")
app.add_typer(tool_app, name="tool")


def _version(value: bool) -> None:
    if value:
        from sire import __version__

        print(f"sire {__version__}")
        raise typer.Exit(0)


#: commands that run for long and log what they do at info by default (others: warning)
_SERVICES = frozenset({"agent", "server"})


@app.callback()
def _main(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            metavar="console|json",
            help="Log lines on stderr [env SIRE_LOG_FORMAT; default: console on a terminal, "
            "else json].",
            show_default=False,
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            metavar="LEVEL",
            help="debug, info, warning or error [env SIRE_LOG_LEVEL; default: info for "
            "agent and server, else warning].",
            show_default=False,
        ),
    ] = None,
    verbose: VerboseFlag = False,
) -> None:
    """Sire: workflows of MCP tools."""
    from sire.observability import logging as logs

    default = "info" if ctx.invoked_subcommand in _SERVICES else "warning"
    logs.configure(log_format, log_level, default_level=default)
    ctx.meta[logs.CLI_CONFIGURED] = True


app.command("run")(run)
workflow_app.command("run")(run)


@workflow_app.command("validate")
def validate(
    files: Annotated[
        list[Path], typer.Argument(help="Workflow files.", metavar="FILE...", show_default=False)
    ],
    online: Annotated[
        bool,
        typer.Option(
            "--online", help="Also check tools and arguments against the live MCP servers."
        ),
    ] = False,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Check workflow files; report each error with file:line and path."""
    from sire.cli import runtime
    from sire.cli.contract import contract_problems
    from sire.errors import DefinitionError
    from sire.model.loader import load_workflow

    def described(exc: DefinitionError) -> dict[str, Any]:
        return {
            "message": str(exc),
            "reason": exc.reason,
            "line": exc.line,
            "path": exc.path,
            "hint": exc.hint,
        }

    config = load_config()
    mux = runtime.build_dispatcher(config)
    results: list[dict[str, Any]] = []
    for file in files:
        try:
            workflow = load_workflow(file, cache_dir=config.cache_dir)
            runtime.check_workflow(workflow, mux, config)
            errors = list(contract_problems(workflow, config, mux, online=online))
        except DefinitionError as exc:
            errors = [exc]
        if errors:
            results.append(
                {
                    "file": str(file),
                    "valid": False,
                    "error": described(errors[0]),
                    "errors": [described(e) for e in errors],
                }
            )
            if not as_json:
                for error in errors:
                    print(f"error  {error}", file=sys.stderr)
            continue
        results.append({"file": str(file), "valid": True, "steps": len(workflow.steps)})
        if not as_json:
            print(f"ok     {file}  ({workflow.id}, {len(workflow.steps)} steps)")
    valid = all(r["valid"] for r in results)
    if as_json:
        emit_json({"valid": valid, "files": results})
    raise typer.Exit(0 if valid else 2)


@workflow_app.command("graph")
def graph(
    file: FileArgument,
    fmt: Annotated[str, typer.Option("--format", "-f", help="text, mermaid or dot.")] = "text",
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Draw a workflow's DAG as text, Mermaid or Graphviz dot."""
    from sire.cli.graph import FORMATS, render_graph
    from sire.errors import InputError
    from sire.model.graph import layers
    from sire.model.loader import load_workflow

    if fmt not in FORMATS:
        raise InputError(f"--format {fmt}: expected one of {', '.join(FORMATS)}")
    workflow = load_workflow(file, cache_dir=load_config().cache_dir)
    if as_json:
        deps = {step.id: list(step.depends) for step in workflow.steps}
        emit_json(
            {
                "workflow_id": workflow.id,
                "steps": [
                    {"id": s.id, "tool": str(s.tool), "depends": list(s.depends)}
                    for s in workflow.steps
                ],
                "layers": layers(deps),
                "rendered": render_graph(workflow, fmt),
            }
        )
    else:
        print(render_graph(workflow, fmt))


@workflow_app.command("schema")
def schema(as_json: JsonFlag = False, verbose: VerboseFlag = False) -> None:
    """Print the JSON Schema of the workflow format (for editors)."""
    from sire.model.format import json_schema

    emit_json(json_schema())


@workflow_app.command("compile")
def compile_workflow(
    target: Annotated[
        str,
        typer.Argument(
            help="A Python SDK workflow: module:attr or path/to/file.py:attr.",
            metavar="MODULE:ATTR",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the YAML to FILE.", show_default=False
        ),
    ] = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Compile a workflow written with the Python SDK (sire.sdk) to YAML."""
    from sire.errors import InputError
    from sire.sdk.target import load_target

    workflow = load_target(target).to_model()
    if output is not None:
        try:
            output.write_text(workflow.text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--output {output}: cannot write it ({exc.strerror})") from None
    if as_json:
        emit_json(
            {
                "workflow_id": workflow.id,
                "steps": len(workflow.steps),
                "output": None if output is None else str(output),
                "yaml": workflow.text,
            }
        )
    elif output is not None:
        print(f"wrote {output}  ({workflow.id}, {len(workflow.steps)} steps)")
    else:
        sys.stdout.write(workflow.text)


@tool_app.command("list")
def tool_list(
    server: Annotated[
        str | None,
        typer.Option(
            "--server",
            metavar="NAME|URL",
            help="List a remote MCP server's tools: a configured name or an http(s) URL.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """List the built-in tools, or a remote MCP server's, with their schemas."""
    config = load_config()
    if server is None:
        from sire.cli.runtime import tool_settings
        from sire.tools import builtin_server

        label = "sire:local"
        tools = builtin_server(tool_settings(config)).list_tools()
        prefix = "sire:local/"
    else:
        from sire.cli.runtime import remote_tools

        label = server
        tools = remote_tools(server, config)
        prefix = f"mcp:{server}#"
    if as_json:
        emit_json({"server": label, "tools": tools})
        return
    if not tools:
        print(f"{label} lists no tools")
        return
    width = max(len(t["name"]) for t in tools)
    for tool in tools:
        schema = tool.get("inputSchema") or {}
        props = schema.get("properties") or {}
        required = set(schema.get("required") or ())
        args = ", ".join(f"{n}{'' if n in required else '?'}" for n in props) or "..."
        about = (tool.get("description") or "").strip().partition("\n")[0]
        print(f"{prefix}{tool['name']:<{width}}  ({args})  {about}".rstrip())


app.add_typer(execution_app, name="execution")
app.add_typer(mcp_app, name="mcp")
app.add_typer(agent_app, name="agent")
app.command("test")(run_tests)
app.command("init")(init)

# The HTTP API and its keys (issue 6): `sire server`, `sire token …`, `sire audit`.
from sire.cli import server as _server  # noqa: E402 - registered after the core commands

app.command("server")(_server.server)
app.add_typer(_server.token_app, name="token")
app.command("audit")(_server.audit)
app.add_typer(secret_app, name="secret")
