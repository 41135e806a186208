"""`sire run` (and `sire workflow run`): validate, store, drive, and report one execution.

Kept apart from the rest of the command tree: the entry point builds only this
command for `sire run`, which is the start-up path that must stay fast.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer

from sire.cli.common import (
    DbOption,
    FileArgument,
    JsonFlag,
    VerboseFlag,
    emit_json,
    execution_document,
)
from sire.config import load_config
from sire.model.execution import Execution, ExecutionStatus


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
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Validate and print the plan; call no tool, store nothing."),
    ] = False,
    online: Annotated[
        bool,
        typer.Option(
            "--online", help="With --dry-run: check every step against its server's tool list."
        ),
    ] = False,
    mock_file: Annotated[
        Path | None,
        typer.Option("--mock-file", help="Canned outputs or errors by step id or tool URI (YAML)."),
    ] = None,
    mock_only: Annotated[
        bool, typer.Option("--mock-only", help="Fail any tool call the mock file does not cover.")
    ] = False,
    record: Annotated[
        Path | None,
        typer.Option("--record", help="Write every tool call and its result to a mock file."),
    ] = None,
    debug: Annotated[
        bool, typer.Option("--debug", help="Stop before each step in an interactive debugger.")
    ] = False,
    breaks: Annotated[
        list[str] | None,
        typer.Option(
            "--break",
            metavar="STEP",
            help="With --debug: stop only before these steps (repeatable).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Run a workflow to its end with live step progress."""
    flags = RunFlags(dry_run, online, mock_file, mock_only, record, debug, tuple(breaks or ()))
    raise typer.Exit(_run(file, inputs or [], inputs_file, workspace, as_json, detach, db, flags))


class RunFlags(NamedTuple):
    """The inner-loop flags of `sire run`: plan, mocks, recording, debugger."""

    dry_run: bool = False
    online: bool = False
    mock_file: Path | None = None
    mock_only: bool = False
    record: Path | None = None
    debug: bool = False
    breaks: tuple[str, ...] = ()


_NO_FLAGS = RunFlags()


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
    flags: RunFlags = _NO_FLAGS,
) -> int:
    import asyncio

    from sire.cli import runtime
    from sire.model.inputs import parse_assignments
    from sire.model.loader import load_workflow

    config = load_config()
    workflow = load_workflow(file, cache_dir=config.cache_dir)
    mux = runtime.build_dispatcher(config)
    runtime.check_workflow(workflow, mux, config)
    given = _read_inputs_file(inputs_file) if inputs_file else {}
    given.update(parse_assignments(workflow, pairs))
    values = runtime.resolve_checked_inputs(workflow, given, config)
    from sire.errors import InputError

    if flags.online and not flags.dry_run:
        raise InputError("--online: only with --dry-run (or `sire workflow validate --online`)")
    if flags.breaks and not flags.debug:
        raise InputError("--break: only with --debug")
    if flags.debug and (detach or as_json):
        raise InputError("--debug: not with --detach or --json; the debugger needs a terminal")
    root = (workspace or Path.cwd()).resolve()
    if not root.is_dir():
        raise InputError(f"--workspace {workspace}: not a directory")
    if flags.dry_run:
        from sire.cli.plan import dry_run

        return dry_run(
            workflow, values, config, mux, online=flags.online, as_json=as_json, workspace=root
        )
    dispatcher: Any = mux
    if flags.mock_file is not None or flags.mock_only or flags.record is not None:
        from sire.dispatch.mock import mocking

        dispatcher = mocking(mux, workflow, flags.mock_file, flags.mock_only, flags.record)
    gate = None
    if flags.debug:
        from sire.cli.debug import TerminalDebugger

        gate = TerminalDebugger(workflow, breaks=set(flags.breaks))
    execution = runtime.new_execution(workflow, values, root)
    progress = None if detach or flags.debug else progress_for(as_json)
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
                dispatcher=dispatcher,
                observer=progress or (gate.observer if gate else runtime.quiet()),
                detach=detach,
                gate=gate,
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
