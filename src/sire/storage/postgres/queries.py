"""The SQL of PostgresStore: each step transition and each fenced write is one statement.

A fenced statement starts with a CTE `fence` that updates the execution's row only
while `lease_token` is the writer's, and takes everything else it writes from that
CTE: a stale token matches no row, so the statement writes nothing and returns (or
counts) no row, which the store turns into StaleLeaseError. One statement is one
transaction in autocommit mode: a step transition costs one round trip. Parameters
in a SELECT list carry casts, since PostgreSQL cannot infer their types there.
"""

from __future__ import annotations

#: One step transition: fence, append its event, upsert the step (placed, when new, at
#: its first event's seq). Parameters: now, id, token; at, key, status, data; the step row.
TRANSITION = """
WITH fence AS (
    UPDATE executions SET updated_at = %s WHERE id = %s AND lease_token = %s RETURNING id
), event AS (
    INSERT INTO events (execution_id, at, kind, key, status, data)
    SELECT id, %s::float8, 'step', %s::text, %s::text, %s::jsonb FROM fence RETURNING seq
)
INSERT INTO steps (
    execution_id, key, status, output, error, attempts, next_attempt, started_at,
    finished_at, checkpoint, mocked, pos
)
SELECT %s::text, %s::text, %s::text, %s::jsonb, %s::text, %s::int4, %s::float8, %s::float8,
       %s::float8, %s::jsonb, %s::bool, seq
FROM event
ON CONFLICT (execution_id, key) DO UPDATE SET
    status = excluded.status,
    output = excluded.output,
    error = excluded.error,
    attempts = excluded.attempts,
    next_attempt = excluded.next_attempt,
    started_at = excluded.started_at,
    finished_at = excluded.finished_at,
    checkpoint = excluded.checkpoint,
    mocked = excluded.mocked
"""

#: Status (and outputs, error) with its event. Outputs NULL keeps the stored ones.
UPDATE_EXECUTION = """
WITH fence AS (
    UPDATE executions
    SET status = %s, outputs = coalesce(%s::jsonb, outputs), error = %s, updated_at = %s,
        lease_owner = CASE WHEN %s THEN NULL ELSE lease_owner END,
        lease_expires_at = CASE WHEN %s THEN NULL ELSE lease_expires_at END
    WHERE id = %s AND lease_token = %s
    RETURNING id, status, updated_at
)
INSERT INTO events (execution_id, at, kind, key, status, data)
SELECT id, updated_at, 'execution', NULL, status, %s::jsonb FROM fence
"""

#: Log lines as `log` events, in order. Parameters: now, id, token, key, ats, levels, data.
ADD_LOGS = """
WITH fence AS (
    UPDATE executions SET updated_at = %s WHERE id = %s AND lease_token = %s RETURNING id
), fenced AS (SELECT count(*) AS n FROM fence), added AS (
    INSERT INTO events (execution_id, at, kind, key, status, data)
    SELECT fence.id, line.at, 'log', %s::text, line.level, line.data
    FROM fence, unnest(%s::float8[], %s::text[], %s::jsonb[]) WITH ORDINALITY
        AS line (at, level, data, n)
    ORDER BY line.n
)
SELECT n FROM fenced
"""

SET_DEFINITION = """
WITH fence AS (
    UPDATE executions SET workflow_hash = %s WHERE id = %s AND lease_token = %s RETURNING id
), stored AS (
    INSERT INTO definitions (hash, source) SELECT %s::text, %s::text FROM fence
    ON CONFLICT (hash) DO NOTHING
)
SELECT count(*) FROM fence
"""

RENEW = """
UPDATE executions SET lease_expires_at = %s WHERE id = %s AND lease_token = %s
RETURNING cancel_requested
"""

RELEASE = """
UPDATE executions SET lease_owner = NULL, lease_expires_at = NULL
WHERE id = %s AND lease_token = %s
"""

#: A cancel request survives a takeover only while the execution is still being driven.
_GRANT = """
    lease_token = x.lease_token + 1,
    lease_owner = %(owner)s,
    lease_expires_at = %(expires_at)s,
    cancel_requested = x.cancel_requested AND x.status IN ('running', 'retrying')
"""

ACQUIRE = f"""
UPDATE executions AS x SET {_GRANT}
WHERE x.id = %(id)s AND (
    x.lease_owner IS NULL OR x.lease_owner = %(owner)s OR coalesce(x.lease_expires_at, 0) <= %(now)s
)
RETURNING x.lease_token, x.cancel_requested
"""

#: Pending or running with no live lease; retrying likewise once its earliest retrying
#: step's next_attempt (if any) has come. Rows another claimer has locked are skipped.
CLAIM = f"""
WITH due AS (
    SELECT id FROM executions AS e
    WHERE status IN ('pending', 'running', 'retrying')
      AND (%(recover)s OR status = 'pending')
      AND (lease_owner IS NULL OR coalesce(lease_expires_at, 0) <= %(now)s)
      AND (status <> 'retrying' OR coalesce((
            SELECT min(s.next_attempt) FROM steps AS s
            WHERE s.execution_id = e.id AND s.status = 'retrying'
          ), %(now)s) <= %(now)s)
    ORDER BY created_at, id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE executions AS x SET {_GRANT}
FROM due WHERE x.id = due.id
RETURNING x.id, x.lease_token, x.cancel_requested, x.created_at
"""

LEASE_OF = """
SELECT status, lease_owner, lease_expires_at, lease_token, cancel_requested
FROM executions WHERE id = %s
"""

PUT_DEFINITION = "INSERT INTO definitions (hash, source) VALUES (%s, %s) ON CONFLICT DO NOTHING"

PUT_EXECUTION = """
INSERT INTO executions (
    id, workflow_id, workflow_hash, status, inputs, outputs, error, workspace,
    created_at, updated_at
) VALUES (%s, %s, %s, %s, %s::jsonb, %s::jsonb, %s, %s, %s, %s)
"""

PUT_STEP = """
INSERT INTO steps (
    execution_id, key, status, output, error, attempts, next_attempt, started_at,
    finished_at, checkpoint, mocked, pos
) VALUES (%s, %s, %s, %s::jsonb, %s, %s, %s, %s, %s, %s::jsonb, %s, %s)
"""

ADD_EVENT = """
INSERT INTO events (execution_id, at, kind, key, status, data)
VALUES (%s, %s, %s, %s, %s, %s::jsonb)
"""

_EXECUTION_COLUMNS = """
SELECT id, workflow_id, workflow_hash, status, inputs, outputs, error, workspace,
       created_at, updated_at
FROM executions
"""

GET_EXECUTION = _EXECUTION_COLUMNS + "WHERE id = %s"

GET_STEPS = """
SELECT key, status, output, error, attempts, next_attempt, started_at, finished_at,
       checkpoint, mocked
FROM steps WHERE execution_id = %s ORDER BY pos
"""

LIST_EXECUTIONS = (
    _EXECUTION_COLUMNS
    + """
WHERE (%(statuses)s::text[] IS NULL OR status = ANY (%(statuses)s::text[]))
  AND (%(workflow_id)s::text IS NULL OR workflow_id = %(workflow_id)s::text)
  AND (%(since)s::float8 IS NULL OR created_at >= %(since)s::float8)
  AND (%(before)s::float8 IS NULL OR created_at < %(before)s::float8)
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s
"""
)

LIST_EVENTS = """
SELECT seq, at, kind, key, status, data FROM events
WHERE execution_id = %s AND seq > %s ORDER BY seq
"""

GET_DEFINITION = "SELECT source FROM definitions WHERE hash = %s"

UNFINISHED_STEPS = """
SELECT key FROM steps
WHERE execution_id = %s AND status IN ('pending', 'running', 'retrying')
ORDER BY pos
"""

CANCEL_STEPS = """
UPDATE steps SET status = 'cancelled', finished_at = %s
WHERE execution_id = %s AND status IN ('pending', 'running', 'retrying')
"""

#: The token moves on: a driver that outlived its lease is refused from now on.
CANCEL_EXECUTION = """
UPDATE executions
SET status = 'cancelled', error = 'cancelled', updated_at = %s, lease_token = lease_token + 1
WHERE id = %s
"""

#: Step transitions (staged ones, then a recorded one) in one call of the function of
#: migration 0003: each (execution, token) fenced once, events appended in order, each
#: step written in its last state. Parameters: now, the batch (JSON text, see
#: `store._batch`). Returns the (id, token) pairs whose fence held; the others'
#: transitions wrote nothing.
TRANSITIONS = "SELECT fenced_id, fenced_token FROM sire_transitions(%s, %s::jsonb)"
