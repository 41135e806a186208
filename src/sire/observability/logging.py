"""Structured logs: JSON lines or console lines on stderr, tied to workflow, execution and step.

Above: the CLI edge, which calls `configure` once per command (`--log-format`,
`--log-level`, `SIRE_LOG_FORMAT`, `SIRE_LOG_LEVEL`). Below: structlog's processors,
which render every standard-library log record of the process: the fields bound by
the engine (`workflow_id`, `execution_id`, `step_id`, `item`, `attempt`, from context
variables), the run's secrets masked, then JSON or console rendering.

structlog costs ~200 ms to import (its console renderer loads rich): it is imported
when the first record is rendered, never on a quiet `sire run`. `Log` is the filtering
logger modules use for events with fields: below the level a call is one comparison.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, TextIO

from sire.errors import InputError

if TYPE_CHECKING:
    from sire.dispatch.dispatcher import DispatchContext
    from sire.engine.engine import EngineObserver
    from sire.model.execution import Execution, StepState

FORMATS = ("console", "json")
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
DEBUG, INFO, WARNING, ERROR = logging.DEBUG, logging.INFO, logging.WARNING, logging.ERROR

#: `(workflow_id, execution_id)` of the run the current task belongs to
_run: ContextVar[tuple[str, str] | None] = ContextVar("sire_log_run", default=None)
#: the attempt the current task is making (its DispatchContext)
_attempt: ContextVar[DispatchContext | None] = ContextVar("sire_log_attempt", default=None)
#: the lowest level emitted: `Log` calls below it return at once
_level = logging.WARNING
_handler: logging.Handler | None = None


def bind_run(workflow_id: str, execution_id: str) -> Token[tuple[str, str] | None]:
    """Tie log records of this task (and the tasks it starts) to one execution."""
    return _run.set((workflow_id, execution_id))


def bind_attempt(ctx: DispatchContext) -> None:
    """Tie log records of this task to the attempt `ctx` (until the next attempt binds)."""
    _attempt.set(ctx)


def unbind_run(token: Token[tuple[str, str] | None]) -> None:
    _run.reset(token)


def context_fields() -> dict[str, Any]:
    """The fields bound to the current task: workflow, execution, step, item, attempt."""
    fields: dict[str, Any] = {}
    run = _run.get()
    if run is not None:
        fields["workflow_id"], fields["execution_id"] = run
    attempt = _attempt.get()
    if attempt is not None and (run is None or attempt.execution_id == run[1]):
        fields["execution_id"] = attempt.execution_id
        fields["step_id"] = attempt.step_id
        if attempt.item_index is not None:
            fields["item"] = attempt.item_index
        fields["attempt"] = attempt.attempt
    return fields


class Log:
    """A logger of events with fields, filtered by level before anything is built.

    `log.info("sire.step.completed", execution_id=...)` goes through the standard
    library (so one handler renders every record of the process) with its fields.
    """

    __slots__ = ("_logger",)

    def __init__(self, name: str) -> None:
        self._logger = logging.getLogger(name)

    def enabled(self, level: int) -> bool:
        return level >= _level

    def debug(self, event: str, **fields: Any) -> None:
        if _level <= DEBUG:
            self._logger.debug(event, extra={"sire_fields": fields})

    def info(self, event: str, **fields: Any) -> None:
        if _level <= INFO:
            self._logger.info(event, extra={"sire_fields": fields})

    def warning(self, event: str, **fields: Any) -> None:
        if _level <= WARNING:
            self._logger.warning(event, extra={"sire_fields": fields})

    def error(self, event: str, **fields: Any) -> None:
        if _level <= ERROR:
            self._logger.error(event, extra={"sire_fields": fields})


def get_logger(name: str) -> Log:
    return Log(name)


def level() -> int:
    """The lowest level emitted now."""
    return _level


def resolve(fmt: str | None, level_name: str | None, *, default_level: str) -> tuple[str, int]:
    """The format and level asked for by the options, else the environment, else defaults.

    Raises:
        InputError: an unknown format or level.
    """
    fmt = fmt or os.environ.get("SIRE_LOG_FORMAT") or None
    level_name = level_name or os.environ.get("SIRE_LOG_LEVEL") or default_level
    if fmt is not None and fmt.lower() not in FORMATS:
        raise InputError(f"--log-format {fmt}: expected one of {', '.join(FORMATS)}")
    number = LEVELS.get(level_name.lower())
    if number is None:
        raise InputError(f"--log-level {level_name}: expected one of {', '.join(LEVELS)}")
    if fmt is None:
        fmt = "console" if _isatty(sys.stderr) else "json"
    return fmt.lower(), number


def configure(
    fmt: str | None = None,
    level_name: str | None = None,
    *,
    default_level: str = "warning",
    stream: TextIO | None = None,
) -> None:
    """Route every log record of the process to `stream` (stderr) as JSON or console lines.

    Replaces what an earlier call installed; imports nothing heavy.

    Raises:
        InputError: an unknown format or level.
    """
    global _level, _handler
    fmt, number = resolve(fmt, level_name, default_level=default_level)
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    _handler = _Handler(fmt, stream)
    _handler.setLevel(number)
    root.addHandler(_handler)
    root.setLevel(number)
    _level = number
    # Records are rendered only here, from their fields: skip what no line shows
    # (the caller's frame, thread and process names; the logging HOWTO's optimisations).
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False


def configured() -> bool:
    return _handler is not None


#: the key the `sire` callback sets in its click context's `meta` once it configured logs
CLI_CONFIGURED = "sire.logging"


def configure_unless_cli(default_level: str = "warning") -> None:
    """Configure from SIRE_LOG_* unless the `sire` callback did for the running command.

    `sire run` is built without the `sire` group (start-up time), so its logs are set
    up here; so are those of callers outside the command line.
    """
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is not None and ctx.find_root().meta.get(CLI_CONFIGURED):
        return
    configure(default_level=default_level)


class _Handler(logging.Handler):
    """Writes records to stderr (looked up at each record) through structlog, built lazily."""

    def __init__(self, fmt: str, stream: TextIO | None) -> None:
        super().__init__()
        self.fmt = fmt
        self.stream = stream
        self._render: Callable[[logging.LogRecord], str] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = self.stream or sys.stderr
            if self._render is None:
                self._render = _structlog_renderer(self.fmt, colors=_isatty(stream))
            stream.write(self._render(record) + "\n")
            stream.flush()
        except Exception:  # a log line must never break the run (logging's own rule)
            self.handleError(record)


def _structlog_renderer(fmt: str, *, colors: bool) -> Callable[[logging.LogRecord], str]:
    """Render a record through structlog's processors.

    What structlog's ProcessorFormatter does for a foreign record, without copying the
    record first (a line costs about half as much: `sire agent` logs several per
    execution at info).
    """
    import structlog
    from structlog.stdlib import ProcessorFormatter

    renderer: Any
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(default=str)
        tail: list[Any] = [structlog.processors.format_exc_info, _redact, renderer]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=colors)
        tail = [_redact, renderer]
    processors = [_add_fields, structlog.processors.TimeStamper(fmt="iso", utc=True), *tail]
    # structlog's own loggers (`structlog.get_logger()`) end in the same pipeline, filtered.
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )

    def render(record: logging.LogRecord) -> str:
        method = record.levelname.lower()
        if isinstance(record.msg, dict):  # from a structlog logger, already an event
            event: Any = {"event": None, **record.msg}
        else:
            event = {"event": record.getMessage()}
        event["level"] = method
        event["logger"] = record.name
        event["_record"] = record
        if record.exc_info:
            event["exc_info"] = record.exc_info
        for processor in processors:
            event = processor(None, method, event)
        return str(event)

    return render


def _add_fields(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """The task's bound fields, then the record's own (which win; None leaves a field out)."""
    record = event.pop("_record", None)
    own = getattr(record, "sire_fields", None)
    bound = context_fields()
    if bound:
        for key, value in bound.items():
            event.setdefault(key, value)
    if own:
        for key, value in own.items():
            if value is None:
                event.pop(key, None)
            else:
                event[key] = value
    return event


def _redact(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Mask the running execution's secrets in every field (sealed values shown redacted)."""
    from sire.secrets.redact import active, shown

    redactor = active()
    for key, value in event.items():
        if type(value) is str:  # most fields: a sealed value is never a string
            if redactor:
                event[key] = redactor.text(value)
        elif isinstance(value, str | dict | list | tuple):
            event[key] = redactor.redact(shown(value)) if redactor else shown(value)
    return event


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class EngineLog:
    """An EngineObserver logging execution and step transitions with their ids.

    `started` and `completed` are info (a step's start is debug), `retrying` info,
    `failed` a warning; every line carries workflow_id, execution_id, step_id, attempt.
    """

    def __init__(self) -> None:
        self.log = Log("sire.engine")

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
        status = state.status
        if status == "running":
            if _level > DEBUG:
                return
            emit = self.log.debug
        elif status == "failed":
            emit = self.log.warning
        elif _level > INFO:
            return
        else:
            emit = self.log.info
        step, _, item = key.partition("/")
        fields: dict[str, Any] = {
            "workflow_id": execution.workflow_id,
            "execution_id": execution.id,
            "step_id": step,
            "attempt": state.attempts,
        }
        if item:
            fields["item"] = int(item) if item.isdigit() else item
        if state.error and status != "completed":
            fields["error"] = state.error
        if status == "completed" and state.started_at is not None and state.finished_at:
            fields["duration_ms"] = round((state.finished_at - state.started_at) * 1000, 3)
        if state.next_attempt is not None:
            fields["next_attempt"] = state.next_attempt
        emit(f"sire.step.{status}", **fields)

    def step_progress(
        self,
        execution: Execution,
        key: str,
        progress: float,
        total: float | None,
        message: str | None,
    ) -> None:
        return None

    def execution_changed(self, execution: Execution) -> None:
        status = execution.status
        emit = self.log.warning if status == "failed" else self.log.info
        fields: dict[str, Any] = {
            "workflow_id": execution.workflow_id,
            "execution_id": execution.id,
            # not the step whose transition changed the status (a task may have one bound)
            "step_id": None,
            "item": None,
            "attempt": None,
        }
        if execution.error:
            fields["error"] = execution.error
        emit(f"sire.execution.{status}", **fields)


def observing(observer: EngineObserver | None) -> EngineObserver | None:
    """`observer`, joined by an `EngineLog` when info lines are emitted."""
    if _level > INFO:
        return observer
    from sire.observability.observers import fan_out

    return fan_out(observer, EngineLog())
