"""Retention in PostgreSQL: removing finished executions with their steps and events."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection


async def delete_executions(
    conn: AsyncConnection[Any], statuses: list[str], before: float, now: float, limit: int
) -> list[str]:
    """In one transaction; rows another transaction has locked are skipped, not awaited."""
    async with conn.transaction():
        cursor = await conn.execute(
            "SELECT id FROM executions WHERE status = ANY(%s) AND updated_at < %s "
            "AND (lease_expires_at IS NULL OR lease_expires_at <= %s) "
            "ORDER BY updated_at, id LIMIT %s FOR UPDATE SKIP LOCKED",
            (statuses, before, now, limit),
        )
        ids = [row[0] for row in await cursor.fetchall()]
        if ids:
            await conn.execute("DELETE FROM events WHERE execution_id = ANY(%s)", (ids,))
            await conn.execute("DELETE FROM steps WHERE execution_id = ANY(%s)", (ids,))
            await conn.execute("DELETE FROM executions WHERE id = ANY(%s)", (ids,))
    return ids
