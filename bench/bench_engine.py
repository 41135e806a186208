"""(b) engine overhead per step on a 1,000-step chain, (c) a 100 x 50 ms fan-out,
(d) DAGs of 10 x 100 and 100 x 100 steps (each needing 2 of the layer before).

In-memory store, built-in tools dispatched in-process. Targets: (b) <= 30 us/step,
(c) <= 60 ms, (d) 1,000 steps <= 50 ms, 10,000 steps <= 1 s.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from _common import best_of, parse_args, report, timed
from sire.dispatch.inprocess import InProcessDispatcher
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine
from sire.model.execution import Execution, ExecutionStatus, new_execution_id
from sire.model.loader import parse_workflow
from sire.model.workflow import Workflow
from sire.storage.memory import MemoryStore
from sire.tools import builtin_server

SERVER = builtin_server()


def chain(n: int, templated: bool) -> Workflow:
    lines = ["id: chain", "steps:", '  - {id: s0, tool: "sire:local/echo", with: {n: 0}}']
    for i in range(1, n):
        if templated:
            ref = f"{{{{ steps.s{i - 1}.output.n }}}}"
            lines.append(f'  - {{id: s{i}, tool: "sire:local/echo", with: {{n: "{ref}"}}}}')
        else:
            lines.append(f'  - {{id: s{i}, tool: "sire:local/echo", needs: [s{i - 1}]}}')
    return parse_workflow("\n".join(lines) + "\n")


def layered(layers: int, width: int) -> Workflow:
    lines = ["id: dag", "max_concurrency: 1000", "steps:"]
    for layer in range(layers):
        for i in range(width):
            needs = ""
            if layer:
                a, b = f"l{layer - 1}_{i}", f"l{layer - 1}_{(i + 1) % width}"
                needs = f", needs: [{a}, {b}]"
            lines.append(
                f'  - {{id: l{layer}_{i}, tool: "sire:local/echo", with: {{i: {i}}}{needs}}}'
            )
    return parse_workflow("\n".join(lines) + "\n")


def fan_out(n: int, seconds: float) -> Workflow:
    lines = ["id: fan", "max_concurrency: 1000", "steps:"]
    for i in range(n):
        lines.append(f'  - {{id: s{i}, tool: "sire:local/sleep", with: {{seconds: {seconds}}}}}')
    return parse_workflow("\n".join(lines) + "\n")


def new_engine() -> Engine:
    mux = DispatcherMux({"sire": InProcessDispatcher(SERVER)}, entry_points=False)
    return Engine(MemoryStore(), mux)


async def run_once(workflow: Workflow, engine: Engine | None = None) -> float:
    engine = engine or new_engine()
    store = engine.store
    execution = Execution(new_execution_id(), workflow.id, workflow.digest)
    await store.create_execution(execution, workflow.text)
    start = time.perf_counter()
    result = await engine.run(workflow, execution)
    elapsed = time.perf_counter() - start
    assert result.status is ExecutionStatus.COMPLETED, result.error
    return elapsed


def engine_time(workflow: Workflow, repeats: int, engine: Engine | None = None) -> float:
    """Best wall time of `repeats` runs; a fresh engine each time unless one is given."""
    return best_of(repeats, lambda: asyncio.run(run_once(workflow, engine)))


def direct_echo(n: int) -> float:
    echo = SERVER.get("echo").fn
    params: dict[str, Any] = {"n": 0}
    start = time.perf_counter()
    for _ in range(n):
        echo(**params)
    return time.perf_counter() - start


def asyncio_dag(layers: int, width: int) -> float:
    """The floor for a DAG: plain asyncio, one task per step awaiting its parents' events."""

    async def main() -> float:
        events = {(n, i): asyncio.Event() for n in range(layers) for i in range(width)}

        async def step(layer: int, i: int) -> None:
            if layer:
                await events[(layer - 1, i)].wait()
                await events[(layer - 1, (i + 1) % width)].wait()
            events[(layer, i)].set()

        start = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for layer in range(layers):
                for i in range(width):
                    group.create_task(step(layer, i))
        return time.perf_counter() - start

    return asyncio.run(main())


def main() -> None:
    args = parse_args(__doc__ or "")
    repeats = 2 if args.quick else 7
    n = 200 if args.quick else 1000

    floor = best_of(repeats, lambda: direct_echo(n))
    templated = chain(n, templated=True)
    warm = new_engine()
    variants = [
        ("needs", chain(n, templated=False), None),
        ("templated, compiled", templated, warm),
        ("templated, compiling too", templated, None),
    ]
    for label, workflow, engine in variants:
        wall = engine_time(workflow, repeats, engine)
        report(
            f"(b) overhead/step, {n}-chain, {label}",
            (wall - floor) / n,
            "us",
            floor / n,
            "direct echo call",
            "<= 30 us",
        )

    fan = 20 if args.quick else 100
    wall = engine_time(fan_out(fan, 0.05), max(2, repeats // 2))
    report(f"(c) {fan} x 50 ms sleep fan-out", wall, "ms", 0.05, "ideal", "<= 60 ms")

    shapes = [(10, 100), (100, 100)] if not args.quick else [(5, 20), (10, 20)]
    for layers, width in shapes:
        parse = timed(lambda: layered(layers, width))  # noqa: B023 - called right here
        workflow = layered(layers, width)
        wall = engine_time(workflow, max(2, repeats // 2))
        floor = best_of(3, lambda: asyncio_dag(layers, width))  # noqa: B023
        target = "<= 50 ms" if layers * width <= 1000 else "<= 1 s"
        report(
            f"(d) DAG {layers} x {width} = {layers * width} steps",
            wall,
            "ms",
            floor,
            "asyncio tasks+events",
            target,
        )
        report("    parse + validate its YAML", parse, "ms", None, "", "-")


if __name__ == "__main__":
    main()
