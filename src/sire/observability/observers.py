"""Several EngineObservers seen as one (progress display, logs, metrics)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sire.engine.engine import EngineObserver, NullObserver

if TYPE_CHECKING:
    from sire.model.execution import Execution, StepState


class _FanOut:
    """Hands every transition to each observer in turn; progress to none of them."""

    def __init__(self, observers: list[EngineObserver]) -> None:
        self.observers = observers

    def step_changed(self, execution: Execution, key: str, state: StepState) -> None:
        for observer in self.observers:
            observer.step_changed(execution, key, state)

    # The engine asks dispatchers for progress only when `step_progress` is not
    # NullObserver's: this class keeps that saving when no observer shows progress.
    step_progress = NullObserver.step_progress

    def execution_changed(self, execution: Execution) -> None:
        for observer in self.observers:
            observer.execution_changed(execution)


class _FanOutWithProgress(_FanOut):
    """A fan-out where some observer shows progress: it is handed to every observer."""

    def step_progress(
        self,
        execution: Execution,
        key: str,
        progress: float,
        total: float | None,
        message: str | None,
    ) -> None:
        for observer in self.observers:
            observer.step_progress(execution, key, progress, total, message)


def _shows_progress(observer: EngineObserver) -> bool:
    return type(observer).step_progress is not NullObserver.step_progress


def fan_out(*observers: EngineObserver | None) -> EngineObserver | None:
    """One observer for all of `observers` (None and NullObservers left out)."""
    kept = [o for o in observers if o is not None and type(o) is not NullObserver]
    if not kept:
        return None
    if len(kept) == 1:
        return kept[0]
    if any(_shows_progress(o) for o in kept):
        return _FanOutWithProgress(kept)
    return _FanOut(kept)
