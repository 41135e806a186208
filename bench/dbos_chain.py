"""The 1,000-step chain on DBOS Transact (its SQLite default), for the README's comparison.

Runs in a bench-only environment (`make bench-dbos` creates .venv-bench with dbos);
not part of `make test`. Prints seconds per durable step beside a raw SQLite commit
per step measured in the same run.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path


def raw_floor(path: Path, n: int) -> float:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("CREATE TABLE steps (id TEXT PRIMARY KEY, state TEXT)")
    start = time.perf_counter()
    for i in range(n):
        connection.execute("BEGIN")
        connection.execute("INSERT OR REPLACE INTO steps VALUES (?, ?)", (f"s{i}", "{}"))
        connection.execute("COMMIT")
    connection.close()
    return (time.perf_counter() - start) / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    n = 200 if parser.parse_args().quick else 1000
    from dbos import DBOS, DBOSConfig

    with tempfile.TemporaryDirectory() as tmp:
        config: DBOSConfig = {
            "name": "sire-bench",
            "system_database_url": f"sqlite:///{tmp}/dbos.sqlite",
            "log_level": "ERROR",
        }
        DBOS(config=config)

        @DBOS.step()
        def echo(value: int) -> int:
            return value

        @DBOS.workflow()
        def chain(steps: int) -> int:
            value = 0
            for _ in range(steps):
                value = echo(value) + 1
            return value

        DBOS.launch()
        chain(10)  # warm up
        start = time.perf_counter()
        assert chain(n) == n
        per_step = (time.perf_counter() - start) / n
        DBOS.destroy()
        floor = raw_floor(Path(tmp) / "raw.sqlite", n)
    print(
        f"{f'DBOS Transact per durable step, {n}-chain':<54} {per_step * 1e6:10.2f} us"
        f"   floor {floor * 1e6:9.2f} us (raw SQLite commit per step)   target -"
    )


if __name__ == "__main__":
    main()
