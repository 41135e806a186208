"""The Store implementations the contract suite runs over, one harness each.

Add an implementation by adding an async factory to `STORES`: it gets the test's
request and `tmp_path` and returns a `StoreHarness` that opens stores over one fresh
data set. PostgreSQL runs in a real cluster the session starts (tests/pg.py), a new
database per test; without PostgreSQL's binaries it skips, and fails under CI=true.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from pg import Cluster, find_bin_dir, start_cluster
from sire.storage.base import Store
from sire.storage.memory import MemoryStore


class StoreHarness:
    """Opens stores of one implementation over one test's data, and closes them after it.

    `reopen()` gives another store over the same data: for a durable implementation a
    new connection that reads only what was committed; for memory, which has nothing
    outside the process, the same instance (so durability is not checked there).
    """

    name = ""
    durable = False

    def __init__(self) -> None:
        self._open: list[Store] = []

    async def _connect(self) -> Store:
        raise NotImplementedError

    async def open(self) -> Store:
        store = await self._connect()
        self._open.append(store)
        return store

    async def reopen(self) -> Store:
        return await self.open()

    async def close(self, store: Store) -> None:
        """`aclose` the store once; the harness will not close it again."""
        self._open = [s for s in self._open if s is not store]
        await store.aclose()

    async def aclose(self) -> None:
        closed: set[int] = set()
        while self._open:
            store = self._open.pop()
            if id(store) not in closed:
                closed.add(id(store))
                await store.aclose()


class MemoryHarness(StoreHarness):
    name = "memory"

    def __init__(self) -> None:
        super().__init__()
        self._store = MemoryStore()

    async def _connect(self) -> Store:
        return self._store


class SQLiteHarness(StoreHarness):
    name = "sqlite"
    durable = True

    def __init__(self, path: Path, open_sqlite: Callable[[Path], Awaitable[Store]]) -> None:
        super().__init__()
        self._path = path
        self._open_sqlite = open_sqlite

    async def _connect(self) -> Store:
        return await self._open_sqlite(self._path)


class PostgresHarness(StoreHarness):
    name = "postgres"
    durable = True

    def __init__(self, cluster: Cluster) -> None:
        super().__init__()
        self._cluster = cluster
        self.url = cluster.create_schema()

    async def _connect(self) -> Store:
        from sire.storage.postgres import open_postgres

        return await open_postgres(self.url, max_size=4)

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            self._cluster.drop_schema(self.url)


async def memory_harness(request: pytest.FixtureRequest, tmp_path: Path) -> StoreHarness:
    return MemoryHarness()


async def sqlite_harness(request: pytest.FixtureRequest, tmp_path: Path) -> StoreHarness:
    try:
        from sire.storage.sqlite import open_sqlite
    except ModuleNotFoundError as missing:
        if missing.name != "sire.storage.sqlite":
            raise  # a dependency of the module is missing: that is a failure, not a skip
        pytest.skip("sire.storage.sqlite not available yet")
    return SQLiteHarness(tmp_path / "sire.db", open_sqlite)


async def postgres_harness(request: pytest.FixtureRequest, tmp_path: Path) -> StoreHarness:
    cluster = request.getfixturevalue("postgres_cluster")
    return PostgresHarness(cluster)


STORES: dict[str, Callable[[pytest.FixtureRequest, Path], Awaitable[StoreHarness]]] = {
    "memory": memory_harness,
    "sqlite": sqlite_harness,
    "postgres": postgres_harness,
}


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster for the session (fsync off: tests need no durability)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        reason = "PostgreSQL's initdb/pg_ctl not found (apt-get install postgresql)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true: the PostgreSQL store must be tested in CI")
        pytest.skip(reason)
    settings = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
    cluster = start_cluster(bin_dir, settings)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(params=list(STORES))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreHarness]:
    opened = await STORES[request.param](request, tmp_path)
    try:
        yield opened
    finally:
        await opened.aclose()


@pytest.fixture
async def store(harness: StoreHarness) -> Store:
    return await harness.open()
