"""Durable execution on SQLite: (1) overhead per step on the 1,000-step echo chain beside
the in-memory engine and a raw floor (a plain loop committing one SQLite row per step
with the same pragmas), (2) a 100 x 50 ms durable fan-out, (3) a 1,000-step durable DAG,
(4) 1,000 small executions (5 steps each) driven by one agent; at synchronous=NORMAL
and FULL.

Targets (NORMAL): <= 100 us/step and <= 2.5x the raw floor per step; FULL <= 250 us;
fan-out <= 70 ms; DAG <= 250 ms; agent >= 5,000 steps/s.
"""

from __future__ import annotations

import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from _common import best_of, parse_args, report
from bench_engine import SERVER, chain, direct_echo, fan_out, layered, run_once
from sire.agent.agent import Agent
from sire.artifacts import Artifacts, LocalArtifacts
from sire.dispatch.inprocess import InProcessDispatcher
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine
from sire.model.execution import Execution, ExecutionStatus, new_execution_id
from sire.model.loader import parse_workflow
from sire.model.workflow import Workflow
from sire.storage.sqlite import open_sqlite


def raw_floor(path: Path, n: int, synchronous: str) -> float:
    """Seconds per step of a plain loop: one row written and committed per step."""
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute(f"PRAGMA synchronous={synchronous}")
    connection.execute("CREATE TABLE IF NOT EXISTS steps (id TEXT PRIMARY KEY, state TEXT)")
    start = time.perf_counter()
    for i in range(n):
        connection.execute("BEGIN")
        connection.execute(
            "INSERT OR REPLACE INTO steps VALUES (?, ?)", (f"s{i}", '{"status":"completed"}')
        )
        connection.execute("COMMIT")
    elapsed = time.perf_counter() - start
    connection.close()
    return elapsed / n


async def durable_run(workflow: Workflow, path: Path, synchronous: str) -> float:
    store = await open_sqlite(path, synchronous=synchronous)
    try:
        mux = DispatcherMux({"sire": InProcessDispatcher(SERVER)}, entry_points=False)
        # As `sire run` configures it: every output's size checked against the threshold.
        artifacts = Artifacts(LocalArtifacts(path.parent / "artifacts"))
        return await run_once(workflow, Engine(store, mux, artifacts=artifacts))
    finally:
        await store.aclose()


async def agent_throughput(path: Path, executions: int, synchronous: str) -> float:
    """Steps per second of one agent driving `executions` pending 5-step executions."""
    lines = ["id: small", "steps:", '  - {id: s0, tool: "sire:local/echo", with: {n: 0}}']
    lines += [f'  - {{id: s{i}, tool: "sire:local/echo", needs: [s{i - 1}]}}' for i in range(1, 5)]
    workflow = parse_workflow("\n".join(lines) + "\n")
    store = await open_sqlite(path, synchronous=synchronous)
    try:
        for _ in range(executions):
            execution = Execution(new_execution_id(), workflow.id, workflow.digest)
            await store.create_execution(execution, workflow.text)
        mux = DispatcherMux({"sire": InProcessDispatcher(SERVER)}, entry_points=False)
        engine = Engine(store, mux)
        agent = Agent(engine, lambda h, s: workflow, concurrency=256, poll_interval=0.01)
        start = time.perf_counter()
        await agent.run(once=True)
        elapsed = time.perf_counter() - start
        done = await store.list_executions(
            statuses=[ExecutionStatus.COMPLETED], limit=executions + 1
        )
        assert len(done) == executions, f"{len(done)} of {executions} completed"
        return executions * 5 / elapsed
    finally:
        await store.aclose()


def main() -> None:
    args = parse_args(__doc__ or "")
    n = 200 if args.quick else 1000
    repeats = 2 if args.quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        counter = iter(range(1_000_000))

        def fresh() -> Path:
            return root / f"db{next(counter)}.sqlite"

        direct = best_of(repeats, lambda: direct_echo(n)) / n
        workflow = chain(n, templated=False)
        memory = (best_of(repeats, lambda: asyncio.run(run_once(workflow))) / n) - direct
        report(
            f"in-memory engine overhead/step, {n}-chain", memory, "us", direct, "direct call", "-"
        )
        for synchronous, target in (("NORMAL", "<= 100 us, <= 2.5x floor"), ("FULL", "<= 250 us")):
            floor = best_of(repeats, lambda: raw_floor(fresh(), n, synchronous))  # noqa: B023
            wall = best_of(
                repeats,
                lambda: asyncio.run(durable_run(workflow, fresh(), synchronous)),  # noqa: B023
            )
            per_step = wall / n
            report(
                f"durable per step, {n}-chain, {synchronous}",
                per_step - direct,
                "us",
                floor,
                "raw SQLite commit per step",
                target,
            )
            print(f"{'    ratio to the raw floor':<54} {per_step / floor:10.2f} x", flush=True)
        fan = 20 if args.quick else 100
        wall = best_of(
            max(2, repeats // 2),
            lambda: asyncio.run(durable_run(fan_out(fan, 0.05), fresh(), "NORMAL")),
        )
        report(f"durable {fan} x 50 ms fan-out, NORMAL", wall, "ms", 0.05, "ideal", "<= 70 ms")
        layers, width = (5, 20) if args.quick else (10, 100)
        dag = layered(layers, width)
        wall = best_of(
            max(2, repeats // 2), lambda: asyncio.run(durable_run(dag, fresh(), "NORMAL"))
        )
        memory_dag = best_of(max(2, repeats // 2), lambda: asyncio.run(run_once(dag)))
        report(
            f"durable DAG {layers} x {width}, NORMAL", wall, "ms", memory_dag, "in-memory engine",
            "<= 250 ms",
        )  # fmt: skip
        count = 100 if args.quick else 1000
        rate = asyncio.run(agent_throughput(fresh(), count, "NORMAL"))
        print(
            f"{f'agent: {count} executions x 5 steps, NORMAL':<54} {rate:10.0f} steps/s"
            "   target >= 5,000 steps/s",
            flush=True,
        )


if __name__ == "__main__":
    main()
