"""The agents' records in SQLite: leader leases (with their terms) and member heartbeats.

Jobs for the writer thread like those of jobs.py (`op(jobs, *args)` inside its
transaction, so each read-then-write is atomic), with their SQL inline: the agent
calls them every few seconds, off the per-step path.
"""

from __future__ import annotations

import json

from sire.errors import StaleLeaseError
from sire.storage.base import Leadership, Lease, Member
from sire.storage.sqlite.jobs import Jobs


def acquire_leadership(
    jobs: Jobs, name: str, owner: str, ttl: float, now: float
) -> Leadership | None:
    conn = jobs.conn
    row = conn.execute(
        "SELECT owner, term, expires_at FROM leaders WHERE name = ?", (name,)
    ).fetchone()
    holder, term, expires_at = row if row is not None else (None, 0, 0.0)
    if holder is not None and expires_at > now and holder != owner:
        return None
    if holder != owner or expires_at <= now:
        term += 1
    conn.execute(
        "INSERT INTO leaders (name, owner, term, expires_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, term = excluded.term, "
        "expires_at = excluded.expires_at",
        (name, owner, term, now + ttl),
    )
    return Leadership(name, owner, term, now + ttl)


def renew_leadership(jobs: Jobs, leadership: Leadership, ttl: float, now: float) -> Leadership:
    name, owner, term, _ = leadership
    cursor = jobs.conn.execute(
        "UPDATE leaders SET expires_at = ? WHERE name = ? AND owner = ? AND term = ?",
        (now + ttl, name, owner, term),
    )
    if cursor.rowcount != 1:
        row = jobs.conn.execute("SELECT term FROM leaders WHERE name = ?", (name,)).fetchone()
        current = 0 if row is None else row[0]
        raise StaleLeaseError(
            f"leader lease '{name}': term {term} of {owner} is stale "
            f"(current {current}); another agent took over"
        )
    return leadership._replace(expires_at=now + ttl)


def release_leadership(jobs: Jobs, leadership: Leadership) -> None:
    jobs.conn.execute(
        "UPDATE leaders SET owner = NULL, expires_at = 0 WHERE name = ? AND owner = ? AND term = ?",
        (leadership.name, leadership.owner, leadership.term),
    )


def get_leader(jobs: Jobs, name: str) -> Leadership | None:
    row = jobs.conn.execute(
        "SELECT owner, term, expires_at FROM leaders WHERE name = ? AND owner IS NOT NULL",
        (name,),
    ).fetchone()
    return None if row is None else Leadership(name, *row)


def heartbeat_member(jobs: Jobs, owner: str, now: float, info: str) -> None:
    jobs.conn.execute(
        "INSERT INTO members (owner, last_seen, info) VALUES (?, ?, ?) "
        "ON CONFLICT (owner) DO UPDATE SET last_seen = excluded.last_seen, info = excluded.info",
        (owner, now, info),
    )


def list_members(jobs: Jobs, since: float) -> list[Member]:
    rows = jobs.conn.execute(
        "SELECT owner, last_seen, info FROM members WHERE last_seen >= ? ORDER BY owner",
        (since,),
    )
    return [Member(owner, last_seen, json.loads(info)) for owner, last_seen, info in rows]


def remove_member(jobs: Jobs, owner: str) -> None:
    jobs.conn.execute("DELETE FROM members WHERE owner = ?", (owner,))


def list_leases(jobs: Jobs, now: float, owner: str | None) -> list[Lease]:
    rows = jobs.conn.execute(
        "SELECT id, lease_owner, lease_token, lease_expires_at, cancel_requested "
        "FROM executions WHERE status IN ('pending', 'running', 'retrying') "
        "AND lease_owner IS NOT NULL AND lease_expires_at > ? AND (? IS NULL OR lease_owner = ?) "
        "ORDER BY created_at, id",
        (now, owner, owner),
    )
    return [Lease(id_, who, token, until, bool(cancel)) for id_, who, token, until, cancel in rows]
