"""The `sire` commands (Typer). Each returns an exit status; `sire.cli.main` maps errors."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from sire.cli.common import (
    DbOption,
    FileArgument,
    JsonFlag,
    VerboseFlag,
    emit_json,
    execution_document,
)
from sire.cli.executions import agent, execution_app
from sire.config import load_config
from sire.model.execution import Execution, ExecutionStatus

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


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
    verbose: VerboseFlag = False,
) -> None:
    """Sire: workflows of MCP tools."""


def run(
    file: FileArgument,
    inputs: Annotated[
        list[str] | None,
        typer.Option(
            "--input", "-i", help="An input, name=value (repeatable).", show_default=False
        ),
    ] = None,
    inputs_file: Annotated[
        Path | None, typer.Option("--inputs-file", help="Inputs from a YAML or JSON file.")
    ] = None,
    workspace: Annotated[
        Path | None,
        typer.Option("--workspace", help="Directory tools' files live in [default: here]."),
    ] = None,
    detach: Annotated[
        bool, typer.Option("--detach", help="Only create the execution, for an agent to run.")
    ] = False,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Run a workflow to its end with live step progress."""
    raise typer.Exit(_run(file, inputs or [], inputs_file, workspace, as_json, detach, db))


app.command("run")(run)
workflow_app.command("run")(run)

#: `sire run` alone: building Typer commands inspects every signature (~20 ms for the
#: whole tree), so the hot command is also registered in an app of its own.
run_app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
run_app.command("run")(run)


def _run(
    file: Path,
    pairs: list[str],
    inputs_file: Path | None,
    workspace: Path | None,
    as_json: bool,
    detach: bool,
    db: str | None,
) -> int:
    import asyncio

    from sire.cli import runtime
    from sire.model.inputs import parse_assignments, resolve_inputs
    from sire.model.loader import load_workflow

    config = load_config()
    workflow = load_workflow(file, cache_dir=config.cache_dir)
    mux = runtime.build_dispatcher(config)
    runtime.check_workflow(workflow, mux, config)
    given = _read_inputs_file(inputs_file) if inputs_file else {}
    given.update(parse_assignments(workflow, pairs))
    values = resolve_inputs(workflow, given)
    root = (workspace or Path.cwd()).resolve()
    if not root.is_dir():
        from sire.errors import InputError

        raise InputError(f"--workspace {workspace}: not a directory")
    execution = runtime.new_execution(workflow, values, root)
    progress = None if detach else progress_for(as_json)
    if progress is not None:
        progress.started(execution, max(len(s.id) for s in workflow.steps))
    started = time.perf_counter()
    try:
        execution = asyncio.run(
            runtime.execute(
                workflow,
                execution,
                config=config,
                db=db,
                dispatcher=mux,
                observer=progress or runtime.quiet(),
                detach=detach,
            )
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        if progress is not None:
            progress.stop()
        message = f"interrupted: execution {execution.id} stopped; it is resumable"
        if as_json:
            emit_json(execution_document(execution, time.perf_counter() - started))
        print(f"sire: {message}", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started
    if detach:
        if as_json:
            emit_json(execution_document(execution, elapsed))
        else:
            print(f"execution {execution.id}  workflow {execution.workflow_id}  pending")
        return 0
    return finish_run(execution, progress, elapsed, as_json)


def finish_run(execution: Execution, progress: Any, elapsed: float, as_json: bool) -> int:
    """Report a driven execution's end; its exit status (0 completed, 1 otherwise)."""
    if progress is not None:
        progress.stop()
    if as_json:
        emit_json(execution_document(execution, elapsed))
    else:
        _print_result(execution, elapsed)
    return 0 if execution.status is ExecutionStatus.COMPLETED else 1


def progress_for(as_json: bool) -> Any:
    if as_json:
        return None
    from sire.cli.progress import LiveProgress, PlainProgress

    return LiveProgress() if sys.stdout.isatty() else PlainProgress()


def _read_inputs_file(path: Path) -> dict[str, Any]:
    from sire.errors import InputError

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--inputs-file {path}: cannot read it ({exc.strerror})") from None
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"--inputs-file {path}: not valid YAML or JSON ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"--inputs-file {path}: must hold a mapping of input names to values")
    return data


def _print_result(execution: Execution, elapsed: float) -> None:
    from sire.model.durations import format_duration

    took = format_duration(elapsed)
    if execution.status is ExecutionStatus.COMPLETED:
        print(f"completed in {took}")
        print(json.dumps(execution.outputs, indent=2, default=str))
    else:
        print(f"{execution.status} after {took}: {execution.error}")


@workflow_app.command("validate")
def validate(
    files: Annotated[
        list[Path], typer.Argument(help="Workflow files.", metavar="FILE...", show_default=False)
    ],
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Check workflow files; report each error with file:line and path."""
    from sire.cli import runtime
    from sire.errors import DefinitionError
    from sire.model.loader import load_workflow

    config = load_config()
    mux = runtime.build_dispatcher(config)
    results: list[dict[str, Any]] = []
    for file in files:
        try:
            workflow = load_workflow(file, cache_dir=config.cache_dir)
            runtime.check_workflow(workflow, mux, config)
        except DefinitionError as exc:
            results.append(
                {
                    "file": str(file),
                    "valid": False,
                    "error": {
                        "message": str(exc),
                        "reason": exc.reason,
                        "line": exc.line,
                        "path": exc.path,
                    },
                }
            )
            if not as_json:
                print(f"error  {exc}", file=sys.stderr)
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


@tool_app.command("list")
def tool_list(as_json: JsonFlag = False, verbose: VerboseFlag = False) -> None:
    """List the built-in tools with their schemas."""
    from sire.cli.runtime import tool_settings
    from sire.tools import builtin_server

    tools = builtin_server(tool_settings(load_config())).list_tools()
    if as_json:
        emit_json({"server": "sire:local", "tools": tools})
        return
    width = max(len(t["name"]) for t in tools)
    for tool in tools:
        props = tool["inputSchema"].get("properties", {})
        required = set(tool["inputSchema"].get("required", []))
        args = ", ".join(f"{n}{'' if n in required else '?'}" for n in props) or "..."
        print(f"sire:local/{tool['name']:<{width}}  ({args})  {tool['description']}")


app.add_typer(execution_app, name="execution")
app.command("agent")(agent)
