-- The security records: encrypted secrets, registered workflow versions, API tokens
-- (only hashes) with their role grants, and the append-only audit log.

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,  -- ciphertext; the store never sees a plain value
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);

CREATE TABLE workflows (
    workflow_id   TEXT NOT NULL,
    version       INTEGER NOT NULL,
    workflow_hash TEXT NOT NULL REFERENCES definitions (hash),
    created_at    REAL NOT NULL,
    created_by    TEXT,
    PRIMARY KEY (workflow_id, version)
);

CREATE TABLE tokens (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    expires_at REAL,
    revoked_at REAL
);

-- workflow_id '' is a grant on every workflow (NULL would defeat the primary key).
CREATE TABLE grants (
    token_id    TEXT NOT NULL REFERENCES tokens (id) ON DELETE CASCADE,
    role        TEXT NOT NULL,
    workflow_id TEXT NOT NULL,
    PRIMARY KEY (token_id, role, workflow_id)
);

CREATE TABLE audit (
    seq     INTEGER PRIMARY KEY,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL,
    allowed INTEGER NOT NULL,
    detail  TEXT NOT NULL  -- JSON object
);
