"""Live step progress for `sire run`: a Rich table on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import threading
import time
from typing import IO, Any

from sire.engine.engine import NullObserver
from sire.model.durations import format_duration
from sire.model.execution import Execution, StepState, StepStatus

_SHOWN = {
    StepStatus.COMPLETED,
    StepStatus.FAILED,
    StepStatus.SKIPPED,
    StepStatus.RETRYING,
    StepStatus.CANCELLED,
}


def _elapsed(state: StepState, now: float | None = None) -> str:
    if state.started_at is None:
        return ""
    end = state.finished_at or now or time.time()
    return format_duration(max(0.0, end - state.started_at))


class PlainProgress(NullObserver):
    """One line per finished or retrying step, for logs and pipes."""

    def __init__(self, out: IO[str] | None = None) -> None:
        self.out = out or sys.stdout
        self.width = 12

    def started(self, execution: Execution, width: int) -> None:
        self.width = max(width, 4)
        print(f"execution {execution.id}  workflow {execution.workflow_id}", file=self.out)

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
        if state.status not in _SHOWN or ("/" in key and state.status is StepStatus.COMPLETED):
            return
        line = f"  {key:<{self.width}}  {state.status:<9}"
        if state.attempts > 1 or state.status is StepStatus.RETRYING:
            line += f"  attempt {state.attempts}"
        if elapsed := _elapsed(state):
            line += f"  {elapsed}"
        if state.error and state.status is not StepStatus.COMPLETED:
            line += f"  {state.error}"
        if state.mocked:
            line += "  (mocked)"
        print(line, file=self.out, flush=True)

    def stop(self) -> None:
        return None


class LiveProgress(NullObserver):
    """A live table of steps (status, attempt, elapsed, note), redrawn a few times a second."""

    MAX_ROWS = 40

    def __init__(self) -> None:
        from rich.console import Console

        self.console = Console()
        self.states: dict[str, StepState] = {}
        self.notes: dict[str, str] = {}
        self.live: Any = None
        self.lock = threading.Lock()  # Rich redraws from its own thread

    def started(self, execution: Execution, width: int) -> None:
        from rich.live import Live

        self.console.print(
            f"execution [bold]{execution.id}[/]  workflow [bold]{execution.workflow_id}[/]"
        )
        self.live = Live(get_renderable=self.render, console=self.console, refresh_per_second=8)
        self.live.start()

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
        if "/" not in key:
            with self.lock:
                self.states[key] = state
                self.notes.pop(key, None)

    def step_progress(
        self,
        execution: Execution,
        key: str,
        progress: float,
        total: float | None,
        message: str | None,
    ) -> None:
        done = f"{progress:g}/{total:g}" if total else f"{progress:g}"
        with self.lock:
            self.notes[key.split("/")[0]] = f"{done} {message or ''}".strip()

    def stop(self) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None

    def render(self) -> Any:
        from rich.table import Table

        colours = {
            StepStatus.COMPLETED: "green",
            StepStatus.FAILED: "red",
            StepStatus.RETRYING: "yellow",
            StepStatus.RUNNING: "cyan",
            StepStatus.SKIPPED: "dim",
        }
        table = Table(box=None, pad_edge=False, show_header=False)
        with self.lock:
            rows = list(self.states.items())
            notes = dict(self.notes)
        if len(rows) > self.MAX_ROWS:
            busy = [r for r in rows if r[1].status is not StepStatus.COMPLETED]
            rows = busy[-self.MAX_ROWS :]
            done = len(self.states) - len(busy)
            table.add_row("", f"[green]{done} completed[/]", "", "", "")
        now = time.time()
        for key, state in rows:
            colour = colours.get(state.status, "white")
            attempt = f"attempt {state.attempts}" if state.attempts > 1 else ""
            note = notes.get(key) or (
                state.error if state.status is not StepStatus.COMPLETED else ""
            )
            if state.mocked:
                note = f"(mocked) {note or ''}"
            table.add_row(
                f"  {key}",
                f"[{colour}]{state.status}[/]",
                attempt,
                _elapsed(state, now),
                note or "",
            )
        return table
