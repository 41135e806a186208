-- Sire's first schema: workflow sources, executions with their lease, step states, events.
-- JSON columns hold compact UTF-8 JSON text; times are seconds since the epoch (REAL);
-- statuses are the string values of ExecutionStatus and StepStatus.

CREATE TABLE definitions (
    hash   TEXT PRIMARY KEY,
    source TEXT NOT NULL
);

CREATE TABLE executions (
    id               TEXT PRIMARY KEY,
    workflow_id      TEXT NOT NULL,
    workflow_hash    TEXT NOT NULL,
    status           TEXT NOT NULL,
    inputs           TEXT NOT NULL,  -- JSON object
    outputs          TEXT,           -- JSON object, once finished
    error            TEXT,
    workspace        TEXT NOT NULL,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    lease_owner      TEXT,
    lease_token      INTEGER NOT NULL DEFAULT 0,  -- the fencing token; grows on every grant
    lease_expires_at REAL,
    cancel_requested INTEGER NOT NULL DEFAULT 0
);

-- Claims scan the unfinished statuses oldest first; listings go newest first.
CREATE INDEX executions_by_status ON executions (status, created_at, id);
CREATE INDEX executions_by_age ON executions (created_at, id);

-- Clustered on its key (WITHOUT ROWID): a transition rewrites one page, not a row and
-- an index entry. `pos` keeps each execution's steps in the order they first appeared.
CREATE TABLE steps (
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    key          TEXT NOT NULL,  -- step id, or `step/index` for a for_each item
    status       TEXT NOT NULL,
    output       TEXT,           -- JSON; NULL when the output is None
    error        TEXT,
    attempts     INTEGER NOT NULL,
    next_attempt REAL,
    started_at   REAL,
    finished_at  REAL,
    pos          INTEGER NOT NULL,
    PRIMARY KEY (execution_id, key)
) WITHOUT ROWID;

-- `seq` is the rowid, without AUTOINCREMENT: the store deletes no events, so max(seq) + 1
-- keeps it strictly increasing, and a commit writes no sqlite_sequence page.
CREATE TABLE events (
    seq          INTEGER PRIMARY KEY,
    execution_id TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    at           REAL NOT NULL,
    kind         TEXT NOT NULL,  -- `execution` or `step`
    key          TEXT,           -- the step or item key; NULL for execution events
    status       TEXT NOT NULL,
    data         TEXT NOT NULL   -- JSON object: error, attempts, next_attempt
);

-- An index entry ends with the rowid: this is (execution_id, seq) order.
CREATE INDEX events_by_execution ON events (execution_id);
