"""The SQLite schema and its SQL: migrations, named queries, connecting, errors in Sire's words.

The schema is the numbered migrations in storage/sql/sqlite/, its version
`PRAGMA user_version`; the queries are storage/sql/sqlite/queries.sql, one attribute
of `Q` per `-- name:`.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator, Mapping
from pathlib import Path

from sire.errors import StoreError

# Read beside the package, not through importlib.resources (9 ms of imports at
# start-up): Sire installs as files, never from a zip.
SQL = Path(__file__).parent.parent / "sql" / "sqlite"


class Queries:
    """queries.sql, one attribute per `-- name:` (a missing or extra name fails at import).

    A plain class, not a NamedTuple: creating one of 21 fields costs 0.5 ms at start-up.
    """

    put_definition: str
    get_definition: str
    put_execution: str
    get_execution: str
    get_steps: str
    list_executions: str
    list_events: str
    lease_of: str
    touch: str
    put_step: str
    add_event: str
    set_status: str
    set_workflow_hash: str
    renew_lease: str
    release_lease: str
    grant_lease: str
    due_executions: str
    flag_cancel: str
    unfinished_steps: str
    cancel_step: str
    cancel_execution: str
    last_seq: str
    add_event_at: str

    def __init__(self, text: str) -> None:
        # str.split, not re.split: compiling a pattern at import costs 0.2 ms.
        chunks = (c.partition("\n") for c in text.split("\n-- name: ")[1:])
        found = {name.strip(): body.strip() for name, _, body in chunks}
        expected = set(Queries.__annotations__)
        if found.keys() != expected:
            raise RuntimeError(
                f"queries.sql: missing {sorted(expected - found.keys())}, "
                f"unexpected {sorted(found.keys() - expected)}"
            )
        self.__dict__.update(found)


def _load_migrations() -> list[tuple[int, str]]:
    """The scripts NNNN_name.sql, in order (matched without `re`, for start-up's sake)."""
    found = []
    for entry in SQL.iterdir():
        number, underscore, rest = entry.name.partition("_")
        name = rest.removesuffix(".sql")
        word = name != rest and name.replace("_", "a").isalnum()
        if len(number) == 4 and number.isdigit() and underscore and word:
            found.append((int(number), entry.read_text("utf-8")))
    return sorted(found)


Q = Queries(SQL.joinpath("queries.sql").read_text("utf-8"))
MIGRATIONS = _load_migrations()
SCHEMA_VERSION = MIGRATIONS[-1][0]


def connect(
    path: Path, synchronous: str, busy_timeout: float, pragmas: Mapping[str, int | str]
) -> sqlite3.Connection:
    """A connection to `path` in WAL mode with Sire's pragmas, its schema migrated.

    `pragmas` are already validated names and values. The connection is in autocommit
    mode (`isolation_level=None`): the writer says BEGIN and COMMIT itself.

    Raises:
        StoreError: the schema is newer than this Sire, or WAL is unavailable.
        sqlite3.Error: anything else SQLite refuses (mapped by `store_error`).
    """
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        _check_version(path, conn)  # before anything writes to the file
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"{path}: cannot use write-ahead logging here ({mode})")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the checkpointer thread's job
        for name, value in pragmas.items():
            conn.execute(f"PRAGMA {name} = {value}")
        if _check_version(path, conn) < SCHEMA_VERSION:
            _migrate(path, conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_version(path: Path, conn: sqlite3.Connection) -> int:
    found: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > SCHEMA_VERSION:
        raise StoreError(
            f"{path}: database schema version {found} is newer than this Sire "
            f"({SCHEMA_VERSION}); upgrade Sire"
        )
    return found


def _migrate(path: Path, conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = _check_version(path, conn)  # another process may have migrated meanwhile
        for number, script in MIGRATIONS:
            if number > found:
                for statement in _statements(script):
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> Iterator[str]:
    """The statements of a migration script (a trailing comment is not one)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def integrity_check(path: str | os.PathLike[str]) -> str:
    """`PRAGMA integrity_check` of the database at `path`: `ok`, or the problems, one a line.

    Raises:
        StoreError: the file cannot be opened, or is not a database.
    """
    target = Path(path)
    try:
        conn = sqlite3.connect(target.resolve().as_uri() + "?mode=rw", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise store_error(target, exc, 0) from exc
    return "\n".join(str(row[0]) for row in rows)


def store_error(path: Path, exc: sqlite3.Error, busy_timeout: float) -> StoreError:
    """One sentence for what SQLite reported: where, why, and what to do."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        waited = f" after waiting {busy_timeout:g} s" if busy_timeout else ""
        return StoreError(f"{path} is locked by another connection{waited}; retry when it is done")
    if code == sqlite3.SQLITE_NOTADB:
        return StoreError(f"{path} is not a Sire database (file is not a database)")
    if code == sqlite3.SQLITE_FULL:
        return StoreError(f"{path}: the database or disk is full; free some space and retry")
    if code == sqlite3.SQLITE_CANTOPEN:
        return StoreError(f"{path}: cannot open the database file; check its directory")
    if code == sqlite3.SQLITE_READONLY:
        return StoreError(f"{path} is read-only; check its permissions")
    if code == sqlite3.SQLITE_CORRUPT:
        return StoreError(f"{path} is corrupt ({exc}); restore it from a backup")
    if code == sqlite3.SQLITE_IOERR:
        return StoreError(f"{path}: disk I/O error ({exc}); check the disk")
    return StoreError(f"{path}: {exc}")
