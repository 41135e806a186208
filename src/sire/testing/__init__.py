"""Public fakes for tests of Sire itself and of users' workflows: small, real implementations.

`MemoryStore` keeps executions in a dict; `FakeClock` makes retries and backoff
instant while recording every wait.
"""

from __future__ import annotations

import asyncio

from sire.storage.memory import MemoryStore

__all__ = ["FakeClock", "MemoryStore"]


class FakeClock:
    """A Clock whose time moves only when someone sleeps; `sleeps` records each wait."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
