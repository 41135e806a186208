"""The security records in SQLite: secrets, workflow versions, tokens and grants, audit.

Jobs for the writer thread like those of jobs.py (`op(jobs, *args)` inside its
transaction), with their SQL inline: they are off every hot path, so they stay out
of queries.sql, which `sire run` parses at start-up.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from sire.errors import NotFoundError, StoreError
from sire.storage.base import AuditEntry, Grant, SecretRecord, Token, WorkflowVersion
from sire.storage.sqlite.jobs import Jobs


def put_secret(jobs: Jobs, name: str, value: str, now: float) -> None:
    jobs.conn.execute(
        "INSERT INTO secrets (name, value, created_at, updated_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (name, value, now, now),
    )


def list_secrets(jobs: Jobs) -> list[SecretRecord]:
    rows = jobs.conn.execute(
        "SELECT name, value, created_at, updated_at FROM secrets ORDER BY name"
    )
    return [SecretRecord(*row) for row in rows]


def delete_secret(jobs: Jobs, name: str) -> bool:
    return jobs.conn.execute("DELETE FROM secrets WHERE name = ?", (name,)).rowcount == 1


def register_workflow(
    jobs: Jobs,
    workflow_id: str,
    workflow_hash: str,
    definition: str,
    now: float,
    created_by: str | None,
) -> WorkflowVersion:
    conn = jobs.conn
    latest = _latest(jobs, workflow_id)
    if latest is not None and latest.workflow_hash == workflow_hash:
        return latest
    version = 1 if latest is None else latest.version + 1
    conn.execute(
        "INSERT OR IGNORE INTO definitions (hash, source) VALUES (?, ?)",
        (workflow_hash, definition),
    )
    conn.execute(
        "INSERT INTO workflows (workflow_id, version, workflow_hash, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?)",
        (workflow_id, version, workflow_hash, now, created_by),
    )
    return WorkflowVersion(workflow_id, version, workflow_hash, now, created_by)


def get_workflow(jobs: Jobs, workflow_id: str, version: int | None) -> WorkflowVersion:
    if version is None:
        found = _latest(jobs, workflow_id)
    else:
        row = jobs.conn.execute(
            f"{_WORKFLOW_COLUMNS} WHERE workflow_id = ? AND version = ?", (workflow_id, version)
        ).fetchone()
        found = None if row is None else WorkflowVersion(*row)
    if found is None:
        which = f"workflow '{workflow_id}'" + ("" if version is None else f" version {version}")
        raise NotFoundError(f"no registered {which}")
    return found


def list_workflows(jobs: Jobs) -> list[WorkflowVersion]:
    rows = jobs.conn.execute(
        f"{_WORKFLOW_COLUMNS} AS w WHERE version = "
        "(SELECT max(version) FROM workflows WHERE workflow_id = w.workflow_id) "
        "ORDER BY workflow_id"
    )
    return [WorkflowVersion(*row) for row in rows]


def create_token(jobs: Jobs, token: Token) -> None:
    conn = jobs.conn
    try:
        conn.execute(
            "INSERT INTO tokens (id, name, token_hash, created_at, expires_at, revoked_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                token.id,
                token.name,
                token.token_hash,
                token.created_at,
                token.expires_at,
                token.revoked_at,
            ),
        )
    except sqlite3.IntegrityError:
        raise StoreError(f"a token with id {token.id} or the same secret exists") from None
    conn.executemany(
        "INSERT OR IGNORE INTO grants (token_id, role, workflow_id) VALUES (?, ?, ?)",
        [(token.id, g.role, g.workflow_id or "") for g in token.grants],
    )


def find_token(jobs: Jobs, token_hash: str) -> Token:
    row = jobs.conn.execute(f"{_TOKEN_COLUMNS} WHERE token_hash = ?", (token_hash,)).fetchone()
    if row is None:
        raise NotFoundError("no such API token")
    return _token(jobs, row)


def list_tokens(jobs: Jobs) -> list[Token]:
    rows = jobs.conn.execute(f"{_TOKEN_COLUMNS} ORDER BY created_at, id").fetchall()
    return [_token(jobs, row) for row in rows]


def revoke_token(jobs: Jobs, token_id: str, now: float) -> bool:
    cursor = jobs.conn.execute(
        "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, token_id)
    )
    return cursor.rowcount == 1


def add_audit(
    jobs: Jobs, at: float, actor: str, action: str, target: str, allowed: bool, detail: str
) -> int:
    cursor = jobs.conn.execute(
        "INSERT INTO audit (seq, at, actor, action, target, allowed, detail) "
        "VALUES ((SELECT coalesce(max(seq), 0) + 1 FROM audit), ?, ?, ?, ?, ?, ?)",
        (at, actor, action, target, int(allowed), detail),
    )
    seq: int = cursor.lastrowid or 0
    return seq


def list_audit(jobs: Jobs, after: int, limit: int) -> list[AuditEntry]:
    rows = jobs.conn.execute(
        "SELECT seq, at, actor, action, target, allowed, detail FROM audit "
        "WHERE seq > ? ORDER BY seq LIMIT ?",
        (after, limit),
    )
    return [
        AuditEntry(seq, at, actor, action, target, bool(allowed), json.loads(detail))
        for seq, at, actor, action, target, allowed, detail in rows
    ]


_WORKFLOW_COLUMNS = (
    "SELECT workflow_id, version, workflow_hash, created_at, created_by FROM workflows"
)
_TOKEN_COLUMNS = "SELECT id, name, token_hash, created_at, expires_at, revoked_at FROM tokens"


def _latest(jobs: Jobs, workflow_id: str) -> WorkflowVersion | None:
    row = jobs.conn.execute(
        f"{_WORKFLOW_COLUMNS} WHERE workflow_id = ? ORDER BY version DESC LIMIT 1",
        (workflow_id,),
    ).fetchone()
    return None if row is None else WorkflowVersion(*row)


def _token(jobs: Jobs, row: tuple[Any, ...]) -> Token:
    token_id, name, token_hash, created_at, expires_at, revoked_at = row
    grants = tuple(
        Grant(role, workflow_id or None)
        for role, workflow_id in jobs.conn.execute(
            "SELECT role, workflow_id FROM grants WHERE token_id = ? ORDER BY role, workflow_id",
            (token_id,),
        )
    )
    return Token(token_id, name, token_hash, grants, created_at, expires_at, revoked_at)
