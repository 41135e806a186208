"""(a) In-process dispatch per call: mux + argument validation + call, vs a direct call.

Target: <= 15 us per call including argument validation.
"""

from __future__ import annotations

import asyncio
import time
from typing import TypedDict

from _common import best_of, parse_args, report
from sire.dispatch.dispatcher import DispatchContext
from sire.dispatch.inprocess import InProcessDispatcher, InProcessServer
from sire.dispatch.mux import DispatcherMux
from sire.model.uri import ToolURI
from sire.tools import builtin_server


class Sum(TypedDict):
    sum: int


def add(a: int, b: int, scale: int = 1) -> Sum:
    """Add two integers (validated: both required, integers; `scale` defaulted)."""
    return {"sum": (a + b) * scale}


async def per_call(mux: DispatcherMux, uri: ToolURI, params: dict[str, int], n: int) -> float:
    ctx = DispatchContext(execution_id="bench", step_id="s")
    await mux.dispatch(ctx, uri, params)  # compile the validator outside the timing
    start = time.perf_counter()
    for _ in range(n):
        await mux.dispatch(ctx, uri, params)
    return (time.perf_counter() - start) / n


def direct(params: dict[str, int], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        add(**params)
    return (time.perf_counter() - start) / n


def main() -> None:
    args = parse_args(__doc__ or "")
    n, repeats = (2_000, 3) if args.quick else (50_000, 7)
    server = InProcessServer("bench")
    server.add_tool(add)
    mux = DispatcherMux(
        {"sire": InProcessDispatcher(server), "builtin": InProcessDispatcher(builtin_server())},
        entry_points=False,
    )
    params = {"a": 1, "b": 2}
    floor = best_of(repeats, lambda: direct(params, n))
    add_uri = ToolURI.parse("sire:local/add")
    echo_uri = ToolURI.parse("builtin:local/echo")
    validated = best_of(repeats, lambda: asyncio.run(per_call(mux, add_uri, params, n)))
    echo = best_of(repeats, lambda: asyncio.run(per_call(mux, echo_uri, params, n)))
    report("in-process dispatch, validated add", validated, "us", floor, "direct call", "<= 15 us")
    report("in-process dispatch, echo (any object)", echo, "us", floor, "direct call", "<= 15 us")


if __name__ == "__main__":
    main()
