"""`sire run` (and `sire workflow run`): validate, store, drive, and report one execution.

Kept apart from the rest of the command tree: the entry point builds only this
command for `sire run`, which is the start-up path that must stay fast.
"""

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
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Run a workflow to its end with live step progress."""
    raise typer.Exit(_run(file, inputs or [], inputs_file, workspace, as_json, detach, db))


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
