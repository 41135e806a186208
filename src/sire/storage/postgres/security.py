"""The security records in PostgreSQL: secrets, workflow versions, tokens and grants, audit.

Each function is one store call on a pooled connection (autocommit: a statement is a
transaction; several go in an explicit one). Off every hot path, so plain and short.
"""

from __future__ import annotations

from typing import Any

import psycopg
import psycopg.errors

from sire.errors import NotFoundError, StoreError
from sire.storage.base import AuditEntry, Grant, SecretRecord, Token, WorkflowVersion

Conn = psycopg.AsyncConnection[Any]

_WORKFLOW_COLUMNS = (
    "SELECT workflow_id, version, workflow_hash, created_at, created_by FROM workflows"
)
_TOKEN_COLUMNS = "SELECT id, name, token_hash, created_at, expires_at, revoked_at FROM tokens"


async def put_secret(conn: Conn, name: str, value: str, now: float) -> None:
    await conn.execute(
        "INSERT INTO secrets (name, value, created_at, updated_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (name, value, now, now),
    )


async def list_secrets(conn: Conn) -> list[SecretRecord]:
    cursor = await conn.execute(
        "SELECT name, value, created_at, updated_at FROM secrets ORDER BY name"
    )
    return [SecretRecord(*row) for row in await cursor.fetchall()]


async def delete_secret(conn: Conn, name: str) -> bool:
    cursor = await conn.execute("DELETE FROM secrets WHERE name = %s", (name,))
    return cursor.rowcount == 1


async def register_workflow(
    conn: Conn,
    workflow_id: str,
    workflow_hash: str,
    definition: str,
    now: float,
    created_by: str | None,
) -> WorkflowVersion:
    async with conn.transaction():
        # Two registrations of one workflow at once number their versions one by one.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (workflow_id,))
        latest = await _latest(conn, workflow_id)
        if latest is not None and latest.workflow_hash == workflow_hash:
            return latest
        version = 1 if latest is None else latest.version + 1
        await conn.execute(
            "INSERT INTO definitions (hash, source) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (workflow_hash, definition),
        )
        await conn.execute(
            "INSERT INTO workflows (workflow_id, version, workflow_hash, created_at, created_by) "
            "VALUES (%s, %s, %s, %s, %s)",
            (workflow_id, version, workflow_hash, now, created_by),
        )
    return WorkflowVersion(workflow_id, version, workflow_hash, now, created_by)


async def get_workflow(conn: Conn, workflow_id: str, version: int | None) -> WorkflowVersion:
    if version is None:
        found = await _latest(conn, workflow_id)
    else:
        cursor = await conn.execute(
            f"{_WORKFLOW_COLUMNS} WHERE workflow_id = %s AND version = %s", (workflow_id, version)
        )
        row = await cursor.fetchone()
        found = None if row is None else WorkflowVersion(*row)
    if found is None:
        which = f"workflow '{workflow_id}'" + ("" if version is None else f" version {version}")
        raise NotFoundError(f"no registered {which}")
    return found


async def list_workflows(conn: Conn) -> list[WorkflowVersion]:
    cursor = await conn.execute(
        f"SELECT DISTINCT ON (workflow_id) {_WORKFLOW_COLUMNS.removeprefix('SELECT ')} "
        "ORDER BY workflow_id, version DESC"
    )
    return [WorkflowVersion(*row) for row in await cursor.fetchall()]


async def create_token(conn: Conn, token: Token) -> None:
    try:
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO tokens (id, name, token_hash, created_at, expires_at, revoked_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (
                    token.id,
                    token.name,
                    token.token_hash,
                    token.created_at,
                    token.expires_at,
                    token.revoked_at,
                ),
            )
            if token.grants:
                async with conn.cursor() as cursor:
                    await cursor.executemany(
                        "INSERT INTO grants (token_id, role, workflow_id) VALUES (%s, %s, %s) "
                        "ON CONFLICT DO NOTHING",
                        [(token.id, g.role, g.workflow_id or "") for g in token.grants],
                    )
    except psycopg.errors.UniqueViolation:
        raise StoreError(f"a token with id {token.id} or the same secret exists") from None


async def find_token(conn: Conn, token_hash: str) -> Token:
    cursor = await conn.execute(f"{_TOKEN_COLUMNS} WHERE token_hash = %s", (token_hash,))
    rows = await cursor.fetchall()
    if not rows:
        raise NotFoundError("no such API token")
    return (await _tokens(conn, rows))[0]


async def list_tokens(conn: Conn) -> list[Token]:
    cursor = await conn.execute(f"{_TOKEN_COLUMNS} ORDER BY created_at, id")
    return await _tokens(conn, await cursor.fetchall())


async def revoke_token(conn: Conn, token_id: str, now: float) -> bool:
    cursor = await conn.execute(
        "UPDATE tokens SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (now, token_id)
    )
    return cursor.rowcount == 1


async def add_audit(
    conn: Conn, at: float, actor: str, action: str, target: str, allowed: bool, detail: str
) -> int:
    cursor = await conn.execute(
        "INSERT INTO audit (at, actor, action, target, allowed, detail) "
        "VALUES (%s, %s, %s, %s, %s, %s::jsonb) RETURNING seq",
        (at, actor, action, target, allowed, detail),
    )
    row = await cursor.fetchone()
    if row is None:  # pragma: no cover - RETURNING always returns the row
        raise StoreError("the audit entry was not stored")
    seq: int = row[0]
    return seq


async def list_audit(conn: Conn, after: int, limit: int) -> list[AuditEntry]:
    cursor = await conn.execute(
        "SELECT seq, at, actor, action, target, allowed, detail FROM audit "
        "WHERE seq > %s ORDER BY seq LIMIT %s",
        (after, limit),
    )
    return [AuditEntry(*row) for row in await cursor.fetchall()]


async def _latest(conn: Conn, workflow_id: str) -> WorkflowVersion | None:
    cursor = await conn.execute(
        f"{_WORKFLOW_COLUMNS} WHERE workflow_id = %s ORDER BY version DESC LIMIT 1",
        (workflow_id,),
    )
    row = await cursor.fetchone()
    return None if row is None else WorkflowVersion(*row)


async def _tokens(conn: Conn, rows: list[Any]) -> list[Token]:
    ids = [row[0] for row in rows]
    cursor = await conn.execute(
        "SELECT token_id, role, workflow_id FROM grants WHERE token_id = ANY (%s) "
        "ORDER BY role, workflow_id",
        (ids,),
    )
    grants: dict[str, list[Grant]] = {}
    for token_id, role, workflow_id in await cursor.fetchall():
        grants.setdefault(token_id, []).append(Grant(role, workflow_id or None))
    return [
        Token(token_id, name, token_hash, tuple(grants.get(token_id, ())), *times)
        for token_id, name, token_hash, *times in rows
    ]
