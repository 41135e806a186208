-- Agents coordinate here: named leader leases whose term grows at every change of
-- hands, and the members' heartbeats.

CREATE TABLE leaders (
    name       TEXT PRIMARY KEY,
    owner      TEXT,           -- NULL once released (the term is kept)
    term       INTEGER NOT NULL,
    expires_at REAL NOT NULL
);

CREATE TABLE members (
    owner     TEXT PRIMARY KEY,
    last_seen REAL NOT NULL,
    info      TEXT NOT NULL  -- JSON object
);
