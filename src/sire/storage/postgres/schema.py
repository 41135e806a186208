"""The PostgreSQL schema: numbered migrations under an advisory lock; errors in Sire's words.

The schema is the numbered scripts in storage/sql/postgres/ (`NNNN_name.sql`); the
versions applied are rows of `schema_version`. `migrate` takes a transaction-level
advisory lock first, so concurrent starters (several agents at once) apply each
script once: the others wait, then find nothing left to do. DDL is transactional in
PostgreSQL, so a failed migration leaves the schema as it was.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg.errors

from sire.errors import StoreError

SQL = Path(__file__).parent.parent / "sql" / "postgres"

#: The advisory lock key migrations hold (any constant: "sire" in ASCII).
MIGRATION_LOCK = 0x73697265


def _load_migrations() -> list[tuple[int, str]]:
    found = []
    for entry in SQL.glob("[0-9][0-9][0-9][0-9]_*.sql"):
        found.append((int(entry.name[:4]), entry.read_text("utf-8")))
    return sorted(found)


MIGRATIONS = _load_migrations()
SCHEMA_VERSION = MIGRATIONS[-1][0]


def redact(url: str) -> str:
    """The URL without its password: what error messages may show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc}" if user else netloc))


async def migrate(conn: psycopg.AsyncConnection[object], where: str) -> int:
    """Bring the schema up to SCHEMA_VERSION; the version found before.

    Raises:
        StoreError: the schema is newer than this Sire.
    """
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version "
            "(version integer PRIMARY KEY, applied_at double precision NOT NULL)"
        )
        cursor = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_version")
        row = await cursor.fetchone()
        found = int(row[0]) if row else 0  # type: ignore[index]
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"{where}: database schema version {found} is newer than this Sire "
                f"({SCHEMA_VERSION}); upgrade Sire"
            )
        for number, script in MIGRATIONS:
            if number > found:
                await conn.execute(script.encode())  # no parameters: several statements
                await conn.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (%s, %s)",
                    (number, time.time()),
                )
    return found


def store_error(where: str, exc: Exception) -> StoreError:
    """One sentence for what PostgreSQL (or the pool) reported: where, why, what to do."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.errors.DiskFull):
        return StoreError(f"{where}: the database server's disk is full; free some space")
    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return StoreError(f"{where}: permission denied ({message}); check the role's grants")
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return StoreError(f"{where} is not a Sire database ({message})")
    if isinstance(exc, psycopg.errors.UntranslatableCharacter | psycopg.errors.DataException):
        return StoreError(f"{where}: a value cannot be stored ({message})")
    if isinstance(exc, psycopg.OperationalError):
        return StoreError(f"{where}: cannot reach the database ({message}); is it running?")
    if exc.__class__.__name__ == "PoolTimeout":
        return StoreError(f"{where}: no database connection free in time ({message})")
    return StoreError(f"{where}: {message}")
