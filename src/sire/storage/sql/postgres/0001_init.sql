-- Sire's schema on PostgreSQL: the same tables as SQLite's migrations 0001-0004, in
-- PostgreSQL's types. JSON columns are JSONB; times are seconds since the epoch
-- (double precision); statuses are the string values of ExecutionStatus and StepStatus.
-- Names that listings sort by are COLLATE "C": byte order, as MemoryStore sorts them.

CREATE TABLE definitions (
    hash   text PRIMARY KEY,
    source text NOT NULL
);

CREATE TABLE executions (
    id               text COLLATE "C" PRIMARY KEY,
    workflow_id      text COLLATE "C" NOT NULL,
    workflow_hash    text NOT NULL,
    status           text NOT NULL,
    inputs           jsonb NOT NULL,
    outputs          jsonb,
    error            text,
    workspace        text NOT NULL,
    created_at       double precision NOT NULL,
    updated_at       double precision NOT NULL,
    lease_owner      text,
    lease_token      bigint NOT NULL DEFAULT 0,  -- the fencing token; grows on every grant
    lease_expires_at double precision,
    cancel_requested boolean NOT NULL DEFAULT false
);

-- Claims scan the unfinished statuses oldest first; listings go newest first.
CREATE INDEX executions_by_status ON executions (status, created_at, id);
CREATE INDEX executions_by_age ON executions (created_at, id);

-- `pos` keeps each execution's steps in the order they first appeared (the seq of
-- the step's first event; negative for the steps the execution was created with).
CREATE TABLE steps (
    execution_id text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    key          text NOT NULL,  -- step id, or `step/index` for a for_each item
    status       text NOT NULL,
    output       jsonb,          -- NULL when the output is None
    error        text,
    attempts     integer NOT NULL,
    next_attempt double precision,
    started_at   double precision,
    finished_at  double precision,
    checkpoint   jsonb,
    mocked       boolean NOT NULL DEFAULT false,
    pos          bigint NOT NULL,
    PRIMARY KEY (execution_id, key)
);

-- `seq` comes from the identity's sequence: strictly increasing per store.
CREATE TABLE events (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    at           double precision NOT NULL,
    kind         text NOT NULL,  -- `execution`, `step` or `log`
    key          text,           -- the step or item key; NULL for execution events
    status       text NOT NULL,
    data         jsonb NOT NULL
);

CREATE INDEX events_by_execution ON events (execution_id, seq);

-- The security records: encrypted secrets, registered workflow versions, API tokens
-- (only hashes) with their role grants, and the append-only audit log.

CREATE TABLE secrets (
    name       text COLLATE "C" PRIMARY KEY,
    value      text NOT NULL,  -- ciphertext; the store never sees a plain value
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL
);

CREATE TABLE workflows (
    workflow_id   text COLLATE "C" NOT NULL,
    version       integer NOT NULL,
    workflow_hash text NOT NULL REFERENCES definitions (hash),
    created_at    double precision NOT NULL,
    created_by    text,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE tokens (
    id         text COLLATE "C" PRIMARY KEY,
    name       text NOT NULL,
    token_hash text NOT NULL UNIQUE,
    created_at double precision NOT NULL,
    expires_at double precision,
    revoked_at double precision
);

-- workflow_id '' is a grant on every workflow (NULL would defeat the primary key).
CREATE TABLE grants (
    token_id    text NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    role        text COLLATE "C" NOT NULL,
    workflow_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (token_id, role, workflow_id)
);

CREATE TABLE audit (
    seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      double precision NOT NULL,
    actor   text NOT NULL,
    action  text NOT NULL,
    target  text NOT NULL,
    allowed boolean NOT NULL,
    detail  jsonb NOT NULL
);
