"""Retention in SQLite: removing finished executions with their steps and events.

A job for the writer thread like those of jobs.py (`op(jobs, *args)` inside its
transaction), its SQL inline: it is off every hot path.
"""

from __future__ import annotations

from sire.storage.sqlite.jobs import Jobs


def delete_executions(
    jobs: Jobs, statuses: tuple[str, ...], before: float, now: float, limit: int
) -> list[str]:
    conn = jobs.conn
    marks = ", ".join("?" * len(statuses))
    rows = conn.execute(
        f"SELECT id FROM executions WHERE status IN ({marks}) AND updated_at < ? "
        "AND (lease_expires_at IS NULL OR lease_expires_at <= ?) "
        "ORDER BY updated_at, id LIMIT ?",
        (*statuses, before, now, limit),
    )
    ids = [row[0] for row in rows]
    for table, column in (
        ("events", "execution_id"),
        ("steps", "execution_id"),
        ("executions", "id"),
    ):
        conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", [(id_,) for id_ in ids])
    return ids
