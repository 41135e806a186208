"""Throughput of `sire agent` processes: 1, 2 and 4 agents on one PostgreSQL database,
beside one agent on SQLite. 1,000 small executions (3 `sire:local/echo` steps: `a`,
then `b` and `c` after it) are stored pending, as `sire run --detach` stores them; then
N real `sire agent` processes start and the clock runs from their start until the
store shows every execution completed. Each run gets a fresh database (PostgreSQL) or
a fresh $SIRE_HOME (SQLite), and is checked afterwards: every execution completed,
each step with exactly one `completed` event and one attempt.

Floors: for PostgreSQL, the same number of step rows committed one by one from one
Python connection (bench_postgres.raw_floor); for SQLite, the same with the store's
pragmas (bench_durable.raw_floor, synchronous=NORMAL). The cluster keeps PostgreSQL's
default durability (fsync on, synchronous_commit on), on loopback.

Target: no lost or doubled step at any agent count. The floor is a serial loop, so
it is a scale, not a bound: agents drive 16 executions at once each. The per-step
overhead target (<= 2x a raw commit) is bench_postgres.py's. Skips (exit 0) where
PostgreSQL's binaries are absent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

from _common import parse_args
from bench_durable import raw_floor as sqlite_floor
from bench_postgres import raw_floor as postgres_floor
from sire.errors import SireError
from sire.model.execution import Execution, ExecutionStatus
from sire.model.loader import parse_workflow
from sire.storage import open_store

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from pg import Cluster, find_bin_dir, start_cluster

WORKFLOW = """\
id: small
steps:
  - {id: a, tool: "sire:local/echo", with: {n: 0}}
  - {id: b, tool: "sire:local/echo", needs: [a], with: {n: 1}}
  - {id: c, tool: "sire:local/echo", needs: [a], with: {n: 2}}
"""
STEPS = ("a", "b", "c")
CONCURRENCY = 16  # `sire agent --concurrency` (its default): executions an agent drives at once
COMPLETED = ExecutionStatus.COMPLETED
UNFINISHED = [ExecutionStatus.PENDING, ExecutionStatus.RUNNING, ExecutionStatus.RETRYING]
BOUND = 600.0  # seconds a run may take before it counts as stuck


class Failed(Exception):
    """A run lost, doubled or never finished an execution (exit status 1)."""


async def submit(url: str | None, home: Path, count: int) -> list[str]:
    """Store `count` pending executions, the way `sire run --detach` does; their ids."""
    from sire.cli import runtime

    workflow = parse_workflow(WORKFLOW)
    store = await open_store(url, home=home)
    try:
        ids = []
        for _ in range(count):
            execution = runtime.new_execution(workflow, {}, home)
            await store.create_execution(execution, workflow.text)
            ids.append(execution.id)
        return ids
    finally:
        await store.aclose()


class Timing(NamedTuple):
    """Seconds from the agents' start to the end, and to the first poll that saw an
    execution completed (process start, election, first claim), with how many it saw."""

    elapsed: float
    first: float
    first_done: int


async def wait_finished(url: str | None, home: Path, count: int, started: float) -> Timing:
    """Poll the store until no execution is left unfinished. A poll asks for one row, so
    as not to load the store it measures."""
    store = await open_store(url, home=home)
    first: tuple[float, int] | None = None
    try:
        while True:
            left = await store.list_executions(statuses=UNFINISHED, limit=1)
            elapsed = time.perf_counter() - started
            if not left:
                return Timing(elapsed, *(first or (elapsed, count)))
            if first is None and await store.list_executions(statuses=[COMPLETED], limit=1):
                done = await store.list_executions(statuses=[COMPLETED], limit=count)
                first = (elapsed, len(done))
            if elapsed > BOUND:
                raise Failed(f"executions still unfinished after {BOUND:.0f}s")
            await asyncio.sleep(0.05)
    finally:
        await store.aclose()


async def verify(url: str | None, home: Path, ids: list[str]) -> None:
    """Every execution completed; each step completed once, in one attempt."""
    store = await open_store(url, home=home)
    try:
        for execution_id in ids:
            execution: Execution = await store.get_execution(execution_id)
            if execution.status is not ExecutionStatus.COMPLETED:
                raise Failed(f"execution {execution_id} is {execution.status}, not completed")
            history = await store.list_events(execution_id)
            for key in STEPS:
                done = [e for e in history if e.kind == "step" and e.key == key]
                completed = sum(e.status == "completed" for e in done)
                state = execution.step_states.get(key)
                attempts = state.attempts if state is not None else 0
                if completed != 1 or attempts != 1:
                    raise Failed(
                        f"execution {execution_id} step {key}: {completed} `completed` "
                        f"events and {attempts} attempts (expected 1 and 1)"
                    )
    finally:
        await store.aclose()


class Agents:
    """`sire agent` processes on one store; stderr and stdout of each go to files."""

    def __init__(self, url: str | None, home: Path) -> None:
        self.url = url
        self.home = home
        self.procs: list[subprocess.Popen[bytes]] = []
        self.env = {**os.environ, "SIRE_HOME": str(home)}

    def start(self) -> None:
        n = len(self.procs)
        argv = [sys.executable, "-m", "sire", "agent", "--concurrency", str(CONCURRENCY)]
        if self.url is not None:
            argv += ["--db", self.url]
        out, err = self.home / f"agent{n}.out", self.home / f"agent{n}.err"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            self.procs.append(subprocess.Popen(argv, env=self.env, stdout=stdout, stderr=stderr))

    def check_alive(self) -> None:
        for n, proc in enumerate(self.procs):
            if proc.poll() is not None:
                raise Failed(f"agent {n} exited with {proc.returncode}:\n{self.stderr(n)}")

    def stderr(self, n: int) -> str:
        return (self.home / f"agent{n}.err").read_text(errors="replace")[-2000:]

    def driven(self) -> list[str]:
        """What each agent said when it stopped: `driven/failed to drive` executions."""
        said = []
        for n in range(len(self.procs)):
            out = (self.home / f"agent{n}.out").read_text(errors="replace").split()
            said.append(f"{out[2]}/{out[5]}" if out[:2] == ["agent", "stopped:"] else "?")
        return said

    def stop(self) -> None:
        """SIGTERM each agent, then SIGKILL what is still there after 10 s."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


class Run(NamedTuple):
    """One run: its timing, and what each agent said it drove."""

    timing: Timing
    driven: list[str]


def run_agents(url: str | None, home: Path, agents: int, count: int) -> Run:
    """Submit `count` executions, drive them with `agents` processes, check the result."""
    ids = asyncio.run(submit(url, home, count))
    group = Agents(url, home)
    try:
        started = time.perf_counter()
        for _ in range(agents):
            group.start()
        timing = asyncio.run(watch(url, home, count, started, group))
        group.check_alive()
    finally:
        group.stop()
    asyncio.run(verify(url, home, ids))
    return Run(timing, group.driven())


async def watch(url: str | None, home: Path, count: int, started: float, group: Agents) -> Timing:
    """wait_finished, failing early should an agent die."""
    waiting = asyncio.create_task(wait_finished(url, home, count, started))
    while not waiting.done():
        await asyncio.wait([waiting], timeout=0.5)
        if not waiting.done():
            try:
                group.check_alive()
            except Failed:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
                raise
    return waiting.result()


def result(name: str, count: int, run: Run, floor: float, floor_name: str) -> None:
    """The steps/s line beside its floor, then executions/s and the check."""
    per_step, timing = len(STEPS), run.timing
    rate = count * per_step / timing.elapsed
    print(
        f"{name + ', wall from agent start':<54} {rate:10.0f} steps/s   floor {floor:9.0f} "
        f"steps/s ({floor_name})   target no lost or doubled step",
        flush=True,
    )
    print(f"{'    ratio to the floor':<54} {rate / floor:10.2f} x", flush=True)
    steady = (count - timing.first_done) / max(timing.elapsed - timing.first, 1e-9)
    print(
        f"{'    executions/s, wall from agent start':<54} {count / timing.elapsed:10.0f} "
        f"executions/s   ({timing.elapsed:.2f} s; driven/failed per agent: {' '.join(run.driven)})",
        flush=True,
    )
    print(
        f"{'    steps/s once running (after the first completed)':<54} "
        f"{steady * per_step:10.0f} steps/s   (first completed at {timing.first:.2f} s)",
        flush=True,
    )
    print(f"{'    check':<54} no lost or doubled step", flush=True)


def measure(cluster: Cluster, quick: bool) -> None:
    count = 100 if quick else 1000
    counts = (1, 2) if quick else (1, 2, 4)
    steps = count * len(STEPS)
    print(
        f"{count} executions x {len(STEPS)} echo steps; sire agent --concurrency {CONCURRENCY}; "
        "default lease and leader ttl; agent logs at SIRE_LOG_LEVEL="
        f"{os.environ.get('SIRE_LOG_LEVEL', 'info (default)')}, to a file",
        flush=True,
    )
    floor = 1 / asyncio.run(postgres_floor(cluster.create_database("floor"), steps))
    for agents in counts:
        url = cluster.create_database(f"agents{agents}")
        with tempfile.TemporaryDirectory(prefix="sire-bench-") as tmp:
            run = run_agents(url, Path(tmp), agents, count)
        name = f"PostgreSQL, {agents} agent{'s' if agents > 1 else ''}"
        result(name, count, run, floor, "one connection, one row committed per step")
    with tempfile.TemporaryDirectory(prefix="sire-bench-") as tmp:
        home = Path(tmp)
        floor = 1 / sqlite_floor(home / "floor.db", steps, "NORMAL")
        run = run_agents(None, home, 1, count)
    result("SQLite, 1 agent", count, run, floor, "one row committed per step, synchronous=NORMAL")


def main() -> None:
    args = parse_args(__doc__ or "")
    bin_dir = find_bin_dir()
    if bin_dir is None:
        print(
            "skipped: PostgreSQL's initdb/pg_ctl not found, so no figure, no floor and "
            "no target to compare (apt-get install postgresql)"
        )
        return
    cluster = start_cluster(bin_dir)
    try:
        measure(cluster, args.quick)
    except (Failed, SireError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr, flush=True)
        sys.exit(1)
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
