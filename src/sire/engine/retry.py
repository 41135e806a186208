"""Backoff: how long to wait before attempt n+1 (pure)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sire.model.workflow import RetryPolicy

if TYPE_CHECKING:
    from random import Random


def backoff_delay(policy: RetryPolicy, attempt: int, rand: Random | None = None) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based) before the next one.

    `initial_interval * backoff ** (attempt - 1)`, capped at `max_interval`; jitter
    takes a random fraction (at most `jitter`) off, so waits never exceed the cap.
    """
    try:
        delay = min(policy.initial_interval * policy.backoff ** (attempt - 1), policy.max_interval)
    except OverflowError:
        delay = policy.max_interval
    if policy.jitter:
        import random  # here, not at the top: only jittered retries pay for it

        delay *= 1.0 - policy.jitter * (rand or random).random()
    return delay
