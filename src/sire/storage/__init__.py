"""Storage: where executions, their step states, events and leases live.

`Store` (base.py) is the protocol the engine writes every transition through;
`MemoryStore` is the in-process implementation (and the fake for tests);
`SQLiteStore` is the embedded default under `$SIRE_HOME`; `PostgresStore` serves
several agents on several hosts. `open_store` picks one from a URL:
`sqlite:///path`, `postgresql://user@host/db`, `memory:`, or None for
`$SIRE_HOME/sire.db`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sire.errors import ConfigError

if TYPE_CHECKING:
    from sire.storage.base import Store


async def open_store(url: str | None, *, home: Path) -> Store:
    """Open the store `url` names (None: SQLite at `home/sire.db`).

    Raises:
        ConfigError: the URL names no store Sire knows.
        StoreError: the store cannot be opened (unreadable, newer schema, locked).
    """
    if url in ("memory:", "memory://"):
        from sire.storage.memory import MemoryStore

        return MemoryStore()
    if url is not None and url.startswith(("postgresql://", "postgres://")):
        from sire.storage.postgres import open_postgres  # psycopg: only for such a URL

        return await open_postgres(url)
    if url is None or url.startswith("sqlite:"):
        from sire.storage.sqlite import open_sqlite

        path, synchronous = _sqlite_target(url, home)
        return await open_sqlite(path, synchronous=synchronous)
    scheme = url.split(":", 1)[0]
    raise ConfigError(
        f"store URL '{url}': unknown scheme '{scheme}:' "
        "(expected sqlite:///path, postgresql://... or memory:)"
    )


def _sqlite_target(url: str | None, home: Path) -> tuple[Path, str]:
    """`sqlite:///abs/path?synchronous=full` -> (path, "full")."""
    if url is None:
        return home / "sire.db", "normal"
    rest = url.removeprefix("sqlite:")
    rest, _, query = rest.partition("?")
    if not rest.startswith("//"):
        raise ConfigError(f"store URL '{url}': expected sqlite:///path/to/file.db")
    path = rest[2:]
    if not path:
        raise ConfigError(f"store URL '{url}' names no file")
    synchronous = "normal"
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        if key != "synchronous" or value.lower() not in ("normal", "full"):
            raise ConfigError(
                f"store URL '{url}': unknown option '{pair}' (synchronous=normal|full)"
            )
        synchronous = value.lower()
    return Path(path).expanduser(), synchronous
