"""Durable execution on PostgreSQL: overhead per step on the 1,000-step echo chain beside a
raw floor (a plain async psycopg loop committing one row per step, same server and
connection settings). The cluster is a throwaway one started here (tests/pg.py) with
PostgreSQL's default durability (fsync on, synchronous_commit on), on loopback.

Target: <= 2x the raw floor per step (DBOS Transact on PostgreSQL: ~5.6 ms per step).
Skips (exit 0) where PostgreSQL's binaries are absent.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from _common import best_of, parse_args, report
from bench_engine import SERVER, chain, direct_echo, run_once
from sire.dispatch.inprocess import InProcessDispatcher
from sire.dispatch.mux import DispatcherMux
from sire.engine.engine import Engine
from sire.model.workflow import Workflow

sys.path.insert(0, str(Path(__file__).parents[1] / "tests"))
from pg import Cluster, find_bin_dir, start_cluster


async def raw_floor(url: str, n: int) -> float:
    """Seconds per step of a plain loop: one row upserted and committed per step."""
    import psycopg

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS floor_steps (id text PRIMARY KEY, state jsonb)"
        )
        await conn.execute("TRUNCATE floor_steps")
        start = time.perf_counter()
        for i in range(n):
            await conn.execute(
                "INSERT INTO floor_steps VALUES (%s, %s::jsonb) "
                "ON CONFLICT (id) DO UPDATE SET state = excluded.state",
                (f"s{i}", '{"status":"completed"}'),
            )
        return (time.perf_counter() - start) / n


async def durable_run(workflow: Workflow, url: str) -> float:
    from sire.storage.postgres import open_postgres

    store = await open_postgres(url)
    try:
        mux = DispatcherMux({"sire": InProcessDispatcher(SERVER)}, entry_points=False)
        return await run_once(workflow, Engine(store, mux))
    finally:
        await store.aclose()


def measure(cluster: Cluster, quick: bool) -> None:
    n = 200 if quick else 1000
    repeats = 2 if quick else 5
    url = cluster.create_database("bench")
    direct = best_of(repeats, lambda: direct_echo(n)) / n
    floor = best_of(repeats, lambda: asyncio.run(raw_floor(url, n)))
    workflow = chain(n, templated=False)
    wall = best_of(repeats, lambda: asyncio.run(durable_run(workflow, url)))
    per_step = wall / n
    report(
        f"durable per step, {n}-chain, PostgreSQL",
        per_step - direct,
        "us",
        floor,
        "raw PostgreSQL commit per step",
        "<= 2x floor",
    )
    print(f"{'    ratio to the raw floor':<54} {per_step / floor:10.2f} x", flush=True)


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
    finally:
        cluster.stop()


if __name__ == "__main__":
    main()
