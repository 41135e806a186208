"""`sire execution list|show|resume|debug|cancel|prune|logs`, `sire agent [status]`."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from sire.artifacts import configured, resolve_execution
from sire.cli.common import (
    DbOption,
    JsonFlag,
    VerboseFlag,
    emit_json,
    execution_document,
    with_store,
)
from sire.config import Config, load_config
from sire.model.execution import Execution, ExecutionStatus
from sire.storage import open_store
from sire.storage.base import Event, Store

execution_app = typer.Typer(help="Inspect and steer executions.", no_args_is_help=True)

IdArgument = Annotated[str, typer.Argument(help="The execution id.", metavar="ID")]
T = TypeVar("T")


@execution_app.command("list")
def list_(
    status: Annotated[
        list[ExecutionStatus] | None, typer.Option("--status", help="Only these statuses.")
    ] = None,
    workflow: Annotated[str | None, typer.Option("--workflow", help="Only this workflow.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many.")] = 50,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """List executions, newest first."""

    async def use(store: Store, config: Config) -> list[Execution]:
        return await store.list_executions(statuses=status, workflow_id=workflow, limit=limit)

    executions = with_store(db, use)
    if as_json:
        emit_json({"executions": [execution_document(e) for e in executions]})
        return
    for e in executions:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e.created_at))
        print(f"{e.id}  {e.status:<9}  {when}  {e.workflow_id}")


@execution_app.command("show")
def show(
    execution_id: IdArgument,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Show an execution: its steps (status, attempts, duration, error) and outputs."""
    from sire.model.durations import format_duration

    async def use(store: Store, config: Config) -> Execution:
        return await resolve_execution(configured(config), await store.get_execution(execution_id))

    execution = with_store(db, use)
    if as_json:
        emit_json(execution_document(execution))
        return
    print(f"execution {execution.id}  workflow {execution.workflow_id}  {execution.status}")
    if execution.error:
        print(f"error: {execution.error}")
    width = max((len(key) for key in execution.step_states), default=4)
    for key, state in execution.step_states.items():
        took = ""
        if state.started_at is not None and state.finished_at is not None:
            took = format_duration(state.finished_at - state.started_at)
        note = state.error if state.error and state.status != "completed" else ""
        note = f"(mocked) {note}".rstrip() if state.mocked else note
        print(f"  {key:<{width}}  {state.status:<9}  {state.attempts:>2}  {took:>7}  {note}")
    if execution.outputs is not None:
        import json

        from sire.secrets.redact import shown

        print(json.dumps(shown(execution.outputs), indent=2, default=str))


@execution_app.command("resume")
def resume(
    execution_id: IdArgument,
    definition: Annotated[
        Path | None,
        typer.Option("--definition", help="Run this workflow file instead of the stored one."),
    ] = None,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Drive a failed or interrupted execution on; completed steps are not run again."""
    from sire.cli import runtime
    from sire.cli.run import finish_run, progress_for

    config = load_config()
    progress = progress_for(as_json)
    started = time.perf_counter()

    def on_start(execution: Execution) -> None:
        if progress is not None:
            progress.started(execution, max((len(k) for k in execution.step_states), default=4))

    try:
        execution = asyncio.run(
            runtime.resume(
                execution_id,
                config=config,
                db=db,
                dispatcher=runtime.build_dispatcher(config),
                observer=progress or runtime.quiet(),
                definition=definition,
                on_start=on_start,
            )
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        if progress is not None:
            progress.stop()
        print(
            f"sire: interrupted: execution {execution_id} stopped; it is resumable", file=sys.stderr
        )
        raise typer.Exit(130) from None
    raise typer.Exit(finish_run(execution, progress, time.perf_counter() - started, as_json))


@execution_app.command("debug")
def debug(
    execution_id: IdArgument,
    definition: Annotated[
        Path | None,
        typer.Option(
            "--definition", help="Run this workflow file (a fix) instead of the stored one."
        ),
    ] = None,
    breaks: Annotated[
        list[str] | None,
        typer.Option(
            "--break",
            metavar="STEP",
            help="Stop only before these steps (repeatable) [default: before each step].",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    verbose: VerboseFlag = False,
) -> None:
    """Resume a failed or interrupted execution in the interactive debugger."""
    from sire.cli import runtime
    from sire.cli.debug import TerminalDebugger
    from sire.cli.run import finish_run
    from sire.model.loader import load_workflow
    from sire.model.workflow import Workflow

    async def definition_of(store: Store, config: Config) -> Workflow:
        execution = await store.get_execution(execution_id)
        if definition is not None:
            return load_workflow(definition, cache_dir=config.cache_dir)
        source = await store.get_definition(execution.workflow_hash)
        return runtime.stored_workflow(execution.workflow_hash, source)

    # The debugger checks its breakpoints against the workflow before anything runs.
    debugger = TerminalDebugger(with_store(db, definition_of), breaks=set(breaks or ()))
    config = load_config()
    started = time.perf_counter()
    try:
        execution = asyncio.run(
            runtime.resume(
                execution_id,
                config=config,
                db=db,
                dispatcher=runtime.build_dispatcher(config),
                observer=debugger.observer,
                definition=definition,
                gate=debugger,
            )
        )
    except (KeyboardInterrupt, asyncio.CancelledError):
        print(
            f"sire: interrupted: execution {execution_id} stopped; it is resumable", file=sys.stderr
        )
        raise typer.Exit(130) from None
    raise typer.Exit(finish_run(execution, None, time.perf_counter() - started, False))


@execution_app.command("cancel")
def cancel(
    execution_id: IdArgument,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Cancel an execution: at once if no one drives it, else at its driver's next heartbeat."""

    async def use(store: Store, config: Config) -> Execution:
        return await store.request_cancel(execution_id, time.time())

    execution = with_store(db, use)
    if as_json:
        emit_json(execution_document(execution))
    elif execution.status is ExecutionStatus.CANCELLED:
        print(f"execution {execution.id} cancelled")
    else:
        print(
            f"execution {execution.id}: cancel requested; its driver stops it at its next heartbeat"
        )


@execution_app.command("prune")
def prune(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Only executions last updated longer ago than this (e.g. 30d, 12h, 0s).",
        ),
    ],
    status: Annotated[
        list[ExecutionStatus] | None,
        typer.Option("--status", help="Only these finished statuses [default: all three]."),
    ] = None,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Delete finished executions with their steps, events, logs and artifacts."""
    from sire.errors import InputError
    from sire.model.durations import parse_duration
    from sire.storage.base import FINISHED

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise InputError(f"--older-than {older_than!r}: {exc}") from None
    statuses = tuple(status or FINISHED)
    unfinished = [str(s) for s in statuses if not s.finished]
    if unfinished:
        raise InputError(
            f"--status {', '.join(unfinished)}: only finished executions (completed, failed, "
            "cancelled) can be pruned"
        )

    async def use(store: Store, config: Config) -> tuple[list[str], int]:
        artifacts = configured(config).store
        now = time.time()
        pruned: list[str] = []
        removed = 0
        while batch := await store.delete_executions(
            before=now - age, now=now, statuses=statuses, limit=500
        ):
            pruned += batch
            # After the rows: a failure here leaves unreferenced files, never a dangling URI.
            for execution_id in batch:
                removed += await artifacts.delete_execution(execution_id)
        return pruned, removed

    pruned, removed = with_store(db, use)
    if as_json:
        emit_json({"pruned": pruned, "artifacts": removed})
        return
    noun = "execution" if len(pruned) == 1 else "executions"
    print(f"pruned {len(pruned)} {noun} ({removed} artifacts)")


@execution_app.command("logs")
def logs(
    execution_id: IdArgument,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Wait for new events.")] = False,
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Print an execution's events in order, with the lines its steps' tools logged.

    With --follow, until it finishes.
    """

    def show_event(event: Event) -> None:
        if as_json:
            document = {
                "seq": event.seq,
                "at": event.at,
                "kind": event.kind,
                "key": event.key,
                "status": event.status,
                **dict(event.data),
            }
            print(json_line(document), flush=True)
            return
        when = (
            time.strftime("%H:%M:%S", time.localtime(event.at))
            + f".{int(event.at * 1000) % 1000:03d}"
        )
        if event.kind == "log":  # a line the step's tool logged: level, [source] message
            source = event.data.get("logger")
            text = str(event.data.get("message", ""))
            text = f"[{source}] {text}" if source else text
            text = text.replace("\n", "\n" + " " * 32)
            print(f"{when}  {event.key or '':<16}  {event.status:<9}  {text}", flush=True)
            return
        what = event.key if event.kind == "step" else "execution"
        extra = "".join(f"  {k}={v}" for k, v in event.data.items())
        print(f"{when}  {what:<16}  {event.status}{extra}", flush=True)

    async def use(store: Store, config: Config) -> None:
        seen = 0
        while True:
            events = await store.list_events(execution_id, after=seen)
            for event in events:
                show_event(event)
                seen = event.seq
            if not follow:
                return
            execution = await store.get_execution(execution_id)
            if execution.status.finished and not events:
                return
            await asyncio.sleep(0.2)

    with_store(db, use)


def json_line(document: dict[str, Any]) -> str:
    import json

    return json.dumps(document, default=str)


# `sire agent [OPTIONS]` runs an agent; `sire agent status` reports on all of them. A
# group whose callback is the agent itself, run only when no subcommand follows.
agent_app = typer.Typer(invoke_without_command=True)


@agent_app.callback()
def agent(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="Drain what is due, then exit.")] = False,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, help="Executions driven at once.")
    ] = 16,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            metavar="PORT",
            help="Serve Prometheus metrics at http://HOST:PORT/metrics.",
            show_default=False,
        ),
    ] = None,
    metrics_host: Annotated[
        str, typer.Option("--metrics-host", help="Address the metrics listen on.")
    ] = "127.0.0.1",
    db: DbOption = None,
    as_json: JsonFlag = False,
    verbose: VerboseFlag = False,
) -> None:
    """Drive pending and abandoned executions until stopped (SIGTERM or Ctrl-C).

    With several agents on one store, each claims pending executions and one, the
    leader, also takes over those whose driver died; `sire agent status` shows which.
    """
    if ctx.invoked_subcommand is not None:
        return
    import signal

    from sire.agent.agent import Agent
    from sire.cli import runtime

    config = load_config()

    async def main() -> Agent:
        metrics: Any = None
        stop_metrics = None
        if metrics_port is not None:
            from sire.observability.logging import get_logger
            from sire.observability.metrics import Metrics, serve, watch_queue

            metrics = Metrics()
            port, stop_metrics = serve(metrics, metrics_host, metrics_port)
            get_logger("sire.agent").info(
                "sire.agent.metrics", url=f"http://{metrics_host}:{port}/metrics"
            )
        store = await open_store(db or config.db_url, home=config.home)
        dispatcher = runtime.build_dispatcher(config)
        engine = runtime.new_engine(store, dispatcher, config, metrics=metrics)
        worker = Agent(
            engine,
            runtime.stored_workflow,
            concurrency=concurrency,
            leader_ttl=_leader_ttl(),
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        watcher = None
        if metrics is not None:
            watcher = asyncio.create_task(
                watch_queue(metrics, store, lambda: len(worker._busy), stop),
                name="sire-agent-metrics",
            )
        try:
            await worker.run(once=once, stop=stop)
        finally:
            stop.set()
            if watcher is not None:
                await watcher
            if stop_metrics is not None:
                stop_metrics()
            await dispatcher.aclose()
            await store.aclose()
        return worker

    worker = asyncio.run(main())
    if as_json:
        emit_json({"driven": worker.driven, "failures": worker.failures})
    else:
        print(
            f"agent stopped: {worker.driven} executions driven, {worker.failures} failed to drive"
        )


def _leader_ttl() -> float:
    """The leader lease's ttl: `SIRE_LEADER_TTL` (a duration, e.g. 2s), else 15 s.

    Raises:
        ConfigError: the variable is not a positive duration.
    """
    import os

    from sire.errors import ConfigError
    from sire.model.durations import parse_duration

    raw = os.environ.get("SIRE_LEADER_TTL")
    if raw is None:
        return 15.0
    try:
        ttl = parse_duration(raw)
    except ValueError:
        raise ConfigError(f"SIRE_LEADER_TTL={raw!r} is not a duration (e.g. 15s)") from None
    if ttl <= 0:
        raise ConfigError("SIRE_LEADER_TTL must be more than 0")
    return ttl


@agent_app.command("status")
def agent_status(
    since: Annotated[
        float,
        typer.Option("--since", min=0, help="Members seen within this many seconds."),
    ] = 60.0,
    db: DbOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show the leader agent and the members heard from lately."""
    from sire.agent.agent import LEADER
    from sire.storage.base import Leadership, Member

    now = time.time()

    async def use(store: Store, config: Config) -> tuple[Leadership | None, list[Member]]:
        return await store.get_leader(LEADER), await store.list_members(now - since)

    leader, members = with_store(db, use)
    live = leader is not None and leader.expires_at > now
    if as_json:
        emit_json(
            {
                "leader": None
                if leader is None
                else {
                    "owner": leader.owner,
                    "term": leader.term,
                    "expires_at": leader.expires_at,
                    "live": live,
                },
                "members": [
                    {
                        "owner": m.owner,
                        "last_seen": m.last_seen,
                        "leader": live and leader is not None and m.owner == leader.owner,
                        "info": dict(m.info),
                    }
                    for m in members
                ],
            }
        )
        return
    if leader is None:
        print("leader: none")
    else:
        state = f"lease {leader.expires_at - now:.1f}s left" if live else "lease lapsed"
        print(f"leader: {leader.owner} (term {leader.term}, {state})")
    print(f"members: {len(members)}")
    for m in members:
        mark = "*" if live and leader is not None and m.owner == leader.owner else " "
        where = " ".join(f"{k}={m.info[k]}" for k in ("host", "pid") if k in m.info)
        print(f"{mark} {m.owner}  seen {now - m.last_seen:.1f}s ago  {where}".rstrip())
