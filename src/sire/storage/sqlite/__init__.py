"""The SQLite store: the Store in one SQLite file in WAL mode, the embedded default.

Above: the engine, the agent and the CLI, through the Store protocol (base.py).
Below: the stdlib sqlite3 module, driven by one writer thread that owns the
connection, so the event loop never waits on the disk. The package owns:

- store.py: `SQLiteStore`, the async facade, and `open_sqlite`;
- writer.py: the writer thread (group commit, savepoints, WAL checkpoints);
- jobs.py: what each call does inside the writer's transaction;
- schema.py: migrations and named queries (storage/sql/sqlite/), connecting,
  `integrity_check`, and SQLite's errors in Sire's words.
"""

from sire.storage.sqlite.schema import MIGRATIONS, SCHEMA_VERSION, integrity_check
from sire.storage.sqlite.store import SQLiteStore, open_sqlite

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore", "integrity_check", "open_sqlite"]
