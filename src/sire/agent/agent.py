"""Agent: the claim loop over a Store, driving each claimed execution with one Engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from sire.engine.engine import Engine
from sire.errors import SireError
from sire.model.execution import Execution
from sire.model.workflow import Workflow
from sire.storage.base import Lease

log = logging.getLogger(__name__)

WorkflowLoader = Callable[[str, str], Workflow]


class Agent:
    """Drives due executions until stopped (or, with `once`, until none is left).

    Args:
        engine: runs each execution; its store is the one claims come from.
        load: builds a Workflow from `(workflow_hash, source)`; called once per hash.
        concurrency: executions driven at once.
        poll_interval: seconds between claims when there is nothing to do.
    """

    def __init__(
        self,
        engine: Engine,
        load: WorkflowLoader,
        *,
        concurrency: int = 16,
        poll_interval: float = 0.5,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.load = load
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.driven = 0
        self.failures = 0
        self._workflows: dict[str, Workflow] = {}
        self._busy: set[asyncio.Task[None]] = set()

    async def run(self, *, once: bool = False, stop: asyncio.Event | None = None) -> None:
        """Claim and drive until `stop` is set; with `once`, until nothing is due."""
        stop = stop or asyncio.Event()
        wake = asyncio.Event()
        try:
            while not stop.is_set():
                free = self.concurrency - len(self._busy)
                claimed: list[Lease] = []
                if free > 0:
                    now = self.engine.clock.time()
                    claimed = await self.store.claim_executions(
                        self.engine.owner, self.engine.lease_ttl, now, limit=free
                    )
                for lease in claimed:
                    task = asyncio.create_task(
                        self._drive(lease, wake), name=f"sire-drive-{lease.execution_id}"
                    )
                    self._busy.add(task)
                    task.add_done_callback(self._busy.discard)
                if once and not claimed and not self._busy:
                    return
                if claimed and len(self._busy) < self.concurrency:
                    continue  # there may be more due right away
                wake.clear()
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
                try:
                    await asyncio.wait(
                        waiters, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    for waiter in waiters:
                        waiter.cancel()
        finally:
            await self._interrupt_all()

    async def _drive(self, lease: Lease, wake: asyncio.Event) -> None:
        try:
            execution = await self.store.get_execution(lease.execution_id)
            workflow = await self._workflow(execution)
            await self.engine.run(workflow, execution, lease=lease)
            self.driven += 1
        except SireError as exc:
            # One execution's trouble (a definition that no longer loads, a lost lease)
            # must not stop the agent: log it and go on with the others.
            self.failures += 1
            log.warning("sire.agent.drive_failed execution_id=%s error=%s", lease.execution_id, exc)
            await self._release_quietly(lease)
        finally:
            wake.set()

    async def _workflow(self, execution: Execution) -> Workflow:
        workflow = self._workflows.get(execution.workflow_hash)
        if workflow is None:
            source = await self.store.get_definition(execution.workflow_hash)
            workflow = self.load(execution.workflow_hash, source)
            self._workflows[execution.workflow_hash] = workflow
        return workflow

    async def _release_quietly(self, lease: Lease) -> None:
        with contextlib.suppress(SireError):  # a stale lease is already someone else's
            await self.store.release_lease(lease)

    async def _interrupt_all(self) -> None:
        busy = list(self._busy)
        for task in busy:
            task.cancel()
        await asyncio.gather(*busy, return_exceptions=True)
