"""Agent: the claim loop over a Store, driving each claimed execution with one Engine.

High availability: any number of agents share a store. Each heartbeats its membership;
one, the leader, holds the store's leader lease `agents` (renewed every third of its
ttl; its term grows at every change of hands). Every agent claims `pending`
executions up to its concurrency (`FOR UPDATE SKIP LOCKED`: no two claim one, none
waits for another), so adding agents adds throughput; only the leader also scans for
the orphans of a dead driver (running or retrying executions whose lease lapsed) and
for runs whose retry is due, and takes them over. The others take the leader lease
over when it lapses or is released. Each execution is driven under its own fenced
lease, so two agents that both believe they lead (a paused former leader) still never
drive one execution at once, and a late write by a former owner is refused.
`run(once=True)` (a one-shot drain) takes no part in the election and recovers too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Callable

from sire.engine.engine import Engine
from sire.errors import SireError, StaleLeaseError
from sire.model.execution import Execution
from sire.model.workflow import Workflow
from sire.storage.base import Leadership, Lease

log = logging.getLogger(__name__)

WorkflowLoader = Callable[[str, str], Workflow]

#: the name of the leader lease the agents of one store compete for
LEADER = "agents"


class Agent:
    """Drives due executions until stopped (or, with `once`, until none is left).

    Args:
        engine: runs each execution; its store is the one claims come from.
        load: builds a Workflow from `(workflow_hash, source)`; called once per hash.
        concurrency: executions driven at once.
        poll_interval: seconds between claims when there is nothing to do.
        leader_ttl: seconds the leader lease lasts unrenewed; members heartbeat and the
            leader renews every third of it.
    """

    def __init__(
        self,
        engine: Engine,
        load: WorkflowLoader,
        *,
        concurrency: int = 16,
        poll_interval: float = 0.5,
        leader_ttl: float = 15.0,
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
        self.leader_ttl = leader_ttl
        self.leadership: Leadership | None = None
        self.info = {"pid": os.getpid(), "host": socket.gethostname(), "concurrency": concurrency}
        self._next_tick = 0.0

    async def run(self, *, once: bool = False, stop: asyncio.Event | None = None) -> None:
        """Claim and drive until `stop` is set; with `once`, until nothing is due."""
        stop = stop or asyncio.Event()
        wake = asyncio.Event()
        try:
            while not stop.is_set():
                if not once:
                    await self._tick()
                free = self.concurrency - len(self._busy)
                claimed: list[Lease] = []
                if free > 0:
                    now = self.engine.clock.time()
                    claimed = await self.store.claim_executions(
                        self.engine.owner,
                        self.engine.lease_ttl,
                        now,
                        limit=free,
                        recover=once or self.leadership is not None,
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
            if not once:
                await self._leave()

    async def _tick(self) -> None:
        """Every third of `leader_ttl`: keep, lose or take the leader lease; heartbeat."""
        loop_now = asyncio.get_running_loop().time()
        if loop_now < self._next_tick:
            return
        self._next_tick = loop_now + self.leader_ttl / 3
        owner, now = self.engine.owner, self.engine.clock.time()
        if self.leadership is not None:
            try:
                self.leadership = await self.store.renew_leadership(
                    self.leadership, self.leader_ttl, now
                )
            except StaleLeaseError as exc:
                log.warning("sire.agent.leadership_lost owner=%s error=%s", owner, exc)
                self.leadership = None
        if self.leadership is None:
            self.leadership = await self.store.acquire_leadership(
                LEADER, owner, self.leader_ttl, now
            )
            if self.leadership is not None:
                log.info("sire.agent.leading owner=%s term=%d", owner, self.leadership.term)
        info = {**self.info, "leader": self.leadership is not None, "busy": len(self._busy)}
        await self.store.heartbeat_member(owner, now, info)

    async def _leave(self) -> None:
        """Give the leader lease up and leave the members (best effort: we are stopping)."""
        with contextlib.suppress(SireError):
            if self.leadership is not None:
                await self.store.release_leadership(self.leadership)
            await self.store.remove_member(self.engine.owner)
        self.leadership = None

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
