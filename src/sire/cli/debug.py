"""The interactive debugger of `sire run --debug` and `sire execution debug`.

`TerminalDebugger` is a `StepGate` (sire.engine.gate) run as a line-oriented REPL:
commands come from stdin (a terminal, or a script piped in by tests), everything
it says goes to stdout, and its `observer` prints one line per step transition,
including those of steps still running while the debugger holds another. What it
prints goes through the run's redactor: a secret value shows as `***`, while the
parameters it hands back to the engine keep the real values.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import sys
import threading
from collections.abc import Mapping
from typing import IO, Any, NamedTuple

from sire.engine.engine import NullObserver
from sire.engine.gate import QUIT, RUN, SKIP, Decision, GateStop, Verdict
from sire.errors import InputError
from sire.model.durations import format_duration
from sire.model.execution import Execution, ExecutionStatus, StepState, StepStatus
from sire.model.workflow import Workflow
from sire.secrets.redact import active

COMMANDS = "step, continue, inspect, edit, skip, retry, break, quit, help"

HELP = """\
commands (aliases in brackets):
  step [s]              run this step, then stop before the next one
  continue [c]          run on until a breakpoint or a failure
  inspect [i] [WHAT]    WHAT: params (default), inputs, state, or a step id (its output)
  edit [e] NAME=VALUE   set a parameter; VALUE is YAML: 3, true, "a text", [1, 2]
  edit [e] {JSON}       replace all the parameters
  skip [k]              skip this step; its dependents are skipped too
  retry [r]             after a failure: run the step again (with any edits)
  break [b] [STEP]      also stop before STEP; alone, list the breakpoints
  quit [q]              stop here; the execution stays resumable
  help [h, ?]           this help
after a failure, step and continue let the failure stand."""

_ALIASES = {
    "s": "step",
    "c": "continue",
    "i": "inspect",
    "e": "edit",
    "k": "skip",
    "r": "retry",
    "b": "break",
    "q": "quit",
    "h": "help",
    "?": "help",
}


class TerminalDebugger:
    """Stops before each step (or only at `breaks`) and asks stdin what to do."""

    def __init__(
        self,
        workflow: Workflow,
        breaks: set[str],
        stdin: IO[str] = sys.stdin,
        stdout: IO[str] = sys.stdout,
    ) -> None:
        """Set up the debugger; it reads nothing until the first stop.

        Raises:
            InputError: a breakpoint names no step of `workflow`.
        """
        self.step_ids = [step.id for step in workflow.steps]
        for name in sorted(breaks):
            if name not in self.step_ids:
                raise InputError(
                    f"--break {name}: workflow '{workflow.id}' has no step '{name}' "
                    f"(steps: {', '.join(self.step_ids)})"
                )
        self.breaks = set(breaks)
        self.stepping = not breaks  # stop before every step until told to `continue`
        self.out = stdout
        self.lines = _Lines(stdin)
        self.echo = not _isatty(stdin)  # a scripted session shows the commands it ran
        self.width = max(len(step_id) for step_id in self.step_ids)
        self.prompt: str | None = None  # shown while waiting for a command
        self.observer = _Transitions(self)

    # -- StepGate -----------------------------------------------------------------

    async def before_step(self, stop: GateStop) -> Decision:
        if not self.stepping and stop.step.id not in self.breaks:
            return RUN
        where = f"{stop.step.tool}"
        if stop.items is not None:
            where += f", for_each over {len(stop.items)} items"
        self.say(f"stopped before {stop.key}  ({where})")
        self.show_params(stop)
        decision = await self.repl(stop)
        assert decision is not None
        return decision

    async def after_failure(self, stop: GateStop) -> Decision | None:
        self.say(f"{stop.key} failed (attempt {stop.attempts}): {stop.error}")
        self.say("  retry, edit then retry, skip, continue (let it fail) or quit")
        return await self.repl(stop)

    # -- the REPL -------------------------------------------------------------------

    async def repl(self, stop: GateStop) -> Decision | None:
        """Read commands until one lets the execution go on; None: let a failure stand."""
        failed = stop.error is not None
        params = None if stop.params is None else copy.deepcopy(dict(stop.params))
        edited = False
        while True:
            line = await self.read(f"sire:debug {stop.key}> ")
            if line is None:
                self.say("end of input: quitting")
                return self.quit(stop.execution)
            word, _, rest = line.strip().partition(" ")
            command, rest = _ALIASES.get(word, word), rest.strip()
            if not command:
                continue
            if command in ("step", "continue"):
                self.stepping = command == "step"
                if failed:
                    return None
                return Decision(Verdict.RUN, params) if edited else RUN
            if command == "retry":
                if not failed:
                    self.say("retry: only after a failure; `step` runs this step")
                    continue
                return Decision(Verdict.RUN, params) if edited else RUN
            if command == "skip":
                return SKIP
            if command == "quit":
                return self.quit(stop.execution)
            if command == "inspect":
                self.inspect(stop, params, rest)
            elif command == "edit":
                if params is None:
                    self.say(
                        "edit: a for_each step's parameters are rendered per item; "
                        "edit them when an item fails"
                    )
                    continue
                changed = _edit(params, rest)
                if isinstance(changed, str):
                    self.say(f"edit: {changed}")
                    continue
                params, edited = changed, True
                self.say(f"  params: {_compact(params)}")
            elif command == "break":
                self.set_break(rest)
            elif command == "help":
                self.say(HELP)
            else:
                self.say(f"unknown command {word!r}; commands: {COMMANDS} (help: h)")

    def quit(self, execution: Execution) -> Decision:
        self.prompt = None  # no prompt follows: the run stops
        self.say(
            f"quit: execution {execution.id} stops here; it is resumable "
            f"(sire execution resume {execution.id}, or sire execution debug {execution.id})"
        )
        return QUIT

    def inspect(self, stop: GateStop, params: dict[str, Any] | None, what: str) -> None:
        execution = stop.execution
        if what in ("", "params"):
            if params is None:
                self.say(f"  items: {_pretty(stop.items)}")
                self.say("  (parameters are rendered per item)")
            else:
                self.say(f"  params: {_pretty(params)}")
        elif what == "inputs":
            self.say(f"  inputs: {_pretty(execution.inputs)}")
        elif what == "state":
            self.say(f"execution {execution.id}  {execution.status}")
            states = execution.step_states
            for step_id in self.step_ids:
                keys = [step_id] + [k for k in states if k.startswith(f"{step_id}/")]
                for key in keys:
                    state = states.get(key)
                    waiting = f"  {key:<{self.width}}  waiting"
                    self.say(_state_line(key, state, self.width) if state else waiting)
        elif what in execution.step_states:
            state = execution.step_states[what]
            self.say(_state_line(what, state, self.width))
            if state.status is StepStatus.COMPLETED:
                self.say(f"  output: {_pretty(state.output)}")
        elif what in self.step_ids:
            self.say(f"  {what}: not started")
        else:
            self.say(f"inspect: no step '{what}'; try params, inputs, state or a step id")

    def set_break(self, name: str) -> None:
        if not name:
            shown = ", ".join(sorted(self.breaks)) or "none"
            self.say(f"breakpoints: {shown}")
        elif name not in self.step_ids:
            self.say(f"break: no step '{name}' (steps: {', '.join(self.step_ids)})")
        else:
            self.breaks.add(name)
            self.say(f"breakpoint before {name}")

    # -- terminal -------------------------------------------------------------------

    async def read(self, prompt: str) -> str | None:
        self.out.write(prompt)
        self.out.flush()
        self.prompt = prompt
        try:
            line = await self.lines.readline()
        finally:
            self.prompt = None
        if line is None:
            self.out.write("\n")
        elif self.echo:
            self.out.write(active().text(line) + "\n")
        self.out.flush()
        return line

    def say(self, text: str) -> None:
        """Print `text` with the run's secret values masked, keeping an open prompt below it."""
        if self.prompt is not None:
            self.out.write("\n")
        self.out.write(active().text(text) + "\n")
        if self.prompt is not None:
            self.out.write(self.prompt)
        self.out.flush()

    def show_params(self, stop: GateStop) -> None:
        if stop.items is not None:
            self.say(f"  items: {_compact(stop.items)}")
        elif stop.params is not None:
            self.say(f"  params: {_compact(stop.params)}")


class _Transitions(NullObserver):
    """One line per step transition, and the execution's id when it starts."""

    def __init__(self, debugger: TerminalDebugger) -> None:
        self.debugger = debugger
        self.shown: dict[str, tuple[StepStatus, int]] = {}
        self.announced = False

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
        if "/" in key and state.status in (StepStatus.RUNNING, StepStatus.COMPLETED):
            return  # items: only their trouble
        if self.shown.get(key) == (state.status, state.attempts):
            return  # a checkpoint, not a transition
        self.shown[key] = (state.status, state.attempts)
        self.debugger.say(_state_line(key, state, self.debugger.width))

    def execution_changed(self, execution: Execution) -> None:
        if execution.status is ExecutionStatus.RUNNING and not self.announced:
            self.announced = True
            self.debugger.say(
                f"execution {execution.id}  workflow {execution.workflow_id}  "
                "(debugger: help lists the commands)"
            )


def _state_line(key: str, state: StepState, width: int) -> str:
    line = f"  {key:<{width}}  {state.status:<9}"
    if state.attempts > 1 or state.status is StepStatus.RETRYING:
        line += f"  attempt {state.attempts}"
    if state.started_at is not None and state.finished_at is not None:
        line += f"  {format_duration(max(0.0, state.finished_at - state.started_at))}"
    if state.mocked:
        line += "  (mocked)"
    if state.error and state.status is not StepStatus.COMPLETED:
        line += f"  {state.error}"
    return line.rstrip()


def _edit(params: dict[str, Any], change: str) -> dict[str, Any] | str:
    """`params` with `change` applied, or why it cannot be.

    Values are read as workflow files are (YAML 1.2: only true/false are booleans).
    """
    if change.startswith("{"):
        replaced = _yaml(change)
        if isinstance(replaced, _Invalid) or not isinstance(replaced, dict):
            return f"not a JSON object{replaced.why if isinstance(replaced, _Invalid) else ''}"
        return replaced
    name, equals, text = change.partition("=")
    name, text = name.strip(), text.strip()
    if not equals or not name:
        return "give NAME=VALUE, or a JSON object to replace the parameters"
    value = _yaml(text) if text else ""
    if isinstance(value, _Invalid):
        return f"{name}: the value is not valid YAML{value.why}"
    edited = copy.deepcopy(params)
    target: dict[str, Any] = edited
    *parents, leaf = name.split(".") if name not in params else [name]
    for part in parents:  # `data.name=x` sets a key inside a mapping parameter
        inner = target.get(part)
        if not isinstance(inner, dict):
            return f"{name}: '{part}' is not a mapping parameter"
        target = inner
    target[leaf] = value
    return edited


class _Invalid(NamedTuple):
    why: str


def _yaml(text: str) -> Any:
    from sire.errors import DefinitionError
    from sire.model.loader import read_yaml

    try:
        return read_yaml(text)[0]
    except DefinitionError as exc:
        return _Invalid(f" ({exc.reason.removeprefix('invalid YAML: ')})")


def _compact(value: Any) -> str:
    value = active().redact(value)  # before dumping: escaping could hide a value from `say`
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 100 else _pretty(value)


def _pretty(value: Any) -> str:
    value = active().redact(value)
    if isinstance(value, Mapping | list) and value:
        text = json.dumps(value, indent=2, default=str, ensure_ascii=False)
        return "\n  ".join(text.splitlines())
    return json.dumps(value, default=str, ensure_ascii=False)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (OSError, ValueError):
        return False


class _Lines:
    """Lines of the debugger's input, read off the event loop so running steps go on.

    A daemon thread reads the file descriptor (never the buffered `sys.stdin`, which
    would hold its lock at exit when Ctrl-C comes mid-read); a stream without one (an
    in-memory script) is read directly.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.queue: asyncio.Queue[str | None] | None = None
        self.ended = False

    async def readline(self) -> str | None:
        """The next line without its newline; None at the end of the input."""
        if self.ended:
            return None
        try:
            fd = self.stream.fileno()
        except (OSError, ValueError):
            text = self.stream.readline()
            self.ended = not text
            return text.rstrip("\r\n") if text else None
        if self.queue is None:
            self.queue = asyncio.Queue()
            loop = asyncio.get_running_loop()
            threading.Thread(
                target=_pump, args=(fd, loop, self.queue), name="sire-debug-stdin", daemon=True
            ).start()
        line = await self.queue.get()
        self.ended = line is None
        return line


def _pump(fd: int, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[str | None]) -> None:
    def put(item: str | None) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the run is over and its loop closed
            return False
        return True

    pending = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            chunk = b""
        if not chunk:
            if pending:
                put(pending.decode(errors="replace").rstrip("\r"))
            put(None)
            return
        *complete, pending = (pending + chunk).split(b"\n")
        for raw in complete:
            if not put(raw.decode(errors="replace").rstrip("\r")):
                return
