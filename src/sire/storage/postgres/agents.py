"""The agents' records in PostgreSQL: leader leases (with their terms) and member heartbeats.

Each function is one store call on a pooled connection (autocommit). Each lease change
is one conditional statement, so two agents racing for the lease cannot both win: the
row lock of the INSERT ... ON CONFLICT / UPDATE orders them.
"""

from __future__ import annotations

from typing import Any

import psycopg

from sire.errors import StaleLeaseError
from sire.storage.base import Leadership, Lease, Member

Conn = psycopg.AsyncConnection[Any]


async def acquire_leadership(
    conn: Conn, name: str, owner: str, ttl: float, now: float
) -> Leadership | None:
    cursor = await conn.execute(
        "INSERT INTO leaders AS l (name, owner, term, expires_at) VALUES (%(name)s, %(owner)s, 1, "
        "%(until)s) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
        "term = CASE WHEN l.owner = excluded.owner AND l.expires_at > %(now)s "
        "THEN l.term ELSE l.term + 1 END, expires_at = excluded.expires_at "
        "WHERE l.owner IS NULL OR l.owner = excluded.owner OR l.expires_at <= %(now)s "
        "RETURNING term",
        {"name": name, "owner": owner, "until": now + ttl, "now": now},
    )
    row = await cursor.fetchone()
    return None if row is None else Leadership(name, owner, int(row[0]), now + ttl)


async def renew_leadership(
    conn: Conn, leadership: Leadership, ttl: float, now: float
) -> Leadership:
    name, owner, term, _ = leadership
    cursor = await conn.execute(
        "UPDATE leaders SET expires_at = %s WHERE name = %s AND owner = %s AND term = %s",
        (now + ttl, name, owner, term),
    )
    if cursor.rowcount != 1:
        cursor = await conn.execute("SELECT term FROM leaders WHERE name = %s", (name,))
        row = await cursor.fetchone()
        current = 0 if row is None else row[0]
        raise StaleLeaseError(
            f"leader lease '{name}': term {term} of {owner} is stale "
            f"(current {current}); another agent took over"
        )
    return leadership._replace(expires_at=now + ttl)


async def release_leadership(conn: Conn, leadership: Leadership) -> None:
    await conn.execute(
        "UPDATE leaders SET owner = NULL, expires_at = 0 "
        "WHERE name = %s AND owner = %s AND term = %s",
        (leadership.name, leadership.owner, leadership.term),
    )


async def get_leader(conn: Conn, name: str) -> Leadership | None:
    cursor = await conn.execute(
        "SELECT owner, term, expires_at FROM leaders WHERE name = %s AND owner IS NOT NULL",
        (name,),
    )
    row = await cursor.fetchone()
    return None if row is None else Leadership(name, row[0], int(row[1]), float(row[2]))


async def heartbeat_member(conn: Conn, owner: str, now: float, info: str) -> None:
    await conn.execute(
        "INSERT INTO members (owner, last_seen, info) VALUES (%s, %s, %s::jsonb) "
        "ON CONFLICT (owner) DO UPDATE SET last_seen = excluded.last_seen, info = excluded.info",
        (owner, now, info),
    )


async def list_members(conn: Conn, since: float) -> list[Member]:
    cursor = await conn.execute(
        "SELECT owner, last_seen, info FROM members WHERE last_seen >= %s ORDER BY owner",
        (since,),
    )
    return [Member(owner, float(seen), info) for owner, seen, info in await cursor.fetchall()]


async def remove_member(conn: Conn, owner: str) -> None:
    await conn.execute("DELETE FROM members WHERE owner = %s", (owner,))


async def list_leases(conn: Conn, now: float, owner: str | None) -> list[Lease]:
    cursor = await conn.execute(
        "SELECT id, lease_owner, lease_token, lease_expires_at, cancel_requested "
        "FROM executions WHERE status IN ('pending', 'running', 'retrying') "
        "AND lease_owner IS NOT NULL AND lease_expires_at > %(now)s "
        "AND (%(owner)s::text IS NULL OR lease_owner = %(owner)s) ORDER BY created_at, id",
        {"now": now, "owner": owner},
    )
    return [
        Lease(id_, who, int(token), until, bool(cancel))
        for id_, who, token, until, cancel in await cursor.fetchall()
    ]
