"""The debugger's seam: a `StepGate` the engine awaits before a step starts and after it fails.

Above it sit the edges (the CLI's `TerminalDebugger`, or a test's scripted gate);
below it, nothing: a gate only answers with a `Decision`. The engine asks one question
at a time and starts no new step while a question is open, so a gate may take as long
as a human needs; steps already running go on and their transitions are still observed.
An engine without a gate asks nothing and pays nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from sire.model.execution import Execution
from sire.model.workflow import Step

#: the reason stored on a step skipped by a gate
SKIPPED_IN_DEBUGGER = "skipped in the debugger"


class Verdict(StrEnum):
    RUN = "run"  # run the step; after a failure, retry it with a fresh attempt
    SKIP = "skip"  # end it `skipped`; its dependents are skipped as usual
    QUIT = "quit"  # stop driving as if interrupted: the execution stays resumable


class Decision(NamedTuple):
    """What to do with the step a gate was asked about.

    `params`, with `RUN`, replace the rendered parameters of this call (and give it a
    new idempotency key). They are ignored before a `for_each` step, whose parameters
    are rendered per item; a failed item may be retried with new ones.
    """

    verdict: Verdict
    params: Mapping[str, Any] | None = None


RUN = Decision(Verdict.RUN)
SKIP = Decision(Verdict.SKIP)
QUIT = Decision(Verdict.QUIT)


class GateStop(NamedTuple):
    """Where the engine stands when it asks: the step, its parameters, why it asks.

    `execution` is the live execution (step states with the outputs of finished
    steps); read it, never change it.
    """

    execution: Execution
    step: Step
    key: str  # the step id, or `step/index` for an item of a `for_each` step
    params: Mapping[str, Any] | None  # rendered; None before a `for_each` step
    items: Sequence[Any] | None = None  # before a `for_each` step: what it runs over
    error: str | None = None  # after a failure: why the last attempt failed
    attempts: int = 0  # attempts made so far


class StepGate(Protocol):
    """Decides, step by step, whether an execution goes on (the interactive debugger).

    `before_step` is asked once per step, after its `if` held and its parameters
    rendered, before its first attempt; steps completed before a resume are not asked
    about. `after_failure` is asked when a step (or a `for_each` item) has failed for
    good, its failure already recorded. A gate that raises stops the run with that
    error; cancellation (Ctrl-C) reaches a gate that is waiting.
    """

    async def before_step(self, stop: GateStop) -> Decision:
        """RUN (maybe with edited params), SKIP or QUIT."""
        ...

    async def after_failure(self, stop: GateStop) -> Decision | None:
        """RUN to retry, SKIP, QUIT, or None to let the failure stand."""
        ...


def edited_key(key: str, params: Mapping[str, Any]) -> str:
    """The idempotency key of a call whose parameters were edited: `key` and their digest.

    A tool that deduplicates by key must not answer an edited call with the result
    of the original one (DESIGN §4).
    """
    import hashlib
    import json

    canonical = json.dumps(params, sort_keys=True, default=str, separators=(",", ":"))
    return f"{key}#{hashlib.sha256(canonical.encode()).hexdigest()[:12]}"
