-- The named queries of SQLiteStore: each `-- name: NAME` starts one statement.
-- Statements marked (fenced) match no row when `lease_token` is no longer the writer's:
-- the store checks the row count and raises StaleLeaseError before writing anything else.

-- name: put_definition
INSERT OR IGNORE INTO definitions (hash, source) VALUES (?, ?);

-- name: get_definition
SELECT source FROM definitions WHERE hash = ?;

-- name: put_execution
INSERT INTO executions (
    id, workflow_id, workflow_hash, status, inputs, outputs, error, workspace,
    created_at, updated_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: get_execution
SELECT id, workflow_id, workflow_hash, status, inputs, outputs, error, workspace,
       created_at, updated_at
FROM executions WHERE id = ?;

-- name: get_steps
SELECT key, status, output, error, attempts, next_attempt, started_at, finished_at, checkpoint,
       mocked
FROM steps WHERE execution_id = ? ORDER BY pos;

-- name: list_executions
-- ?1: 1 to filter on the statuses ?2..?7 (unused ones NULL); ?8: workflow id or NULL;
-- ?10, ?11: created_at from (inclusive), to (exclusive), or NULL.
SELECT id, workflow_id, workflow_hash, status, inputs, outputs, error, workspace,
       created_at, updated_at
FROM executions
WHERE (?1 IS NULL OR status IN (?2, ?3, ?4, ?5, ?6, ?7))
  AND (?8 IS NULL OR workflow_id = ?8)
  AND (?10 IS NULL OR created_at >= ?10)
  AND (?11 IS NULL OR created_at < ?11)
ORDER BY created_at DESC, id DESC
LIMIT ?9;

-- name: list_events
SELECT seq, at, kind, key, status, data
FROM events WHERE execution_id = ? AND seq > ? ORDER BY seq;

-- name: lease_of
SELECT status, lease_owner, lease_expires_at, lease_token, cancel_requested
FROM executions WHERE id = ?;

-- name: touch
-- (fenced) The first statement of every step transition.
UPDATE executions SET updated_at = ? WHERE id = ? AND lease_token = ?;

-- name: put_step
-- The last parameter, `pos`, counts only for a new row: an existing one keeps its place.
INSERT INTO steps (
    execution_id, key, status, output, error, attempts, next_attempt, started_at, finished_at,
    checkpoint, mocked, pos
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (execution_id, key) DO UPDATE SET
    status = excluded.status,
    output = excluded.output,
    error = excluded.error,
    attempts = excluded.attempts,
    next_attempt = excluded.next_attempt,
    started_at = excluded.started_at,
    finished_at = excluded.finished_at,
    checkpoint = excluded.checkpoint,
    mocked = excluded.mocked;

-- name: add_event
INSERT INTO events (execution_id, at, kind, key, status, data) VALUES (?, ?, ?, ?, ?, ?);

-- name: set_status
-- (fenced) Outputs NULL keeps the stored ones.
UPDATE executions SET status = ?, outputs = coalesce(?, outputs), error = ?, updated_at = ?
WHERE id = ? AND lease_token = ?;

-- name: set_workflow_hash
-- (fenced)
UPDATE executions SET workflow_hash = ? WHERE id = ? AND lease_token = ?;

-- name: renew_lease
-- (fenced)
UPDATE executions SET lease_expires_at = ? WHERE id = ? AND lease_token = ?;

-- name: release_lease
UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL
WHERE id = ? AND lease_token = ?;

-- name: grant_lease
-- A cancel request survives a takeover only while the execution is still being driven.
UPDATE executions SET
    lease_token = lease_token + 1,
    lease_owner = ?,
    lease_expires_at = ?,
    cancel_requested = cancel_requested AND status IN ('running', 'retrying')
WHERE id = ?;

-- name: due_executions
-- Pending or running with no live lease; retrying likewise once its earliest
-- retrying step's next_attempt (if any) has come. ?1: now; ?2: limit; ?3: 0 for pending
-- ones only (no recovery).
SELECT id FROM executions AS e
WHERE status IN ('pending', 'running', 'retrying')
  AND (?3 OR status = 'pending')
  AND (lease_owner IS NULL OR coalesce(lease_expires_at, 0) <= ?1)
  AND (status <> 'retrying' OR coalesce((
        SELECT min(s.next_attempt) FROM steps AS s
        WHERE s.execution_id = e.id AND s.status = 'retrying'
      ), ?1) <= ?1)
ORDER BY created_at, id
LIMIT ?2;

-- name: flag_cancel
UPDATE executions SET cancel_requested = 1 WHERE id = ?;

-- name: unfinished_steps
SELECT key FROM steps
WHERE execution_id = ? AND status IN ('pending', 'running', 'retrying')
ORDER BY pos;

-- name: cancel_step
UPDATE steps SET status = 'cancelled', finished_at = ? WHERE execution_id = ? AND key = ?;

-- name: cancel_execution
-- The token moves on: a driver that outlived its lease is refused from now on.
UPDATE executions
SET status = 'cancelled', error = 'cancelled', updated_at = ?, lease_token = lease_token + 1
WHERE id = ?;

-- name: last_seq
-- Under the write lock: the next event's seq is this plus one.
SELECT coalesce(max(seq), 0) FROM events;

-- name: add_event_at
-- add_event with its seq given: a batch of events numbered from last_seq, in one call.
INSERT INTO events (seq, execution_id, at, kind, key, status, data) VALUES (?, ?, ?, ?, ?, ?, ?);
