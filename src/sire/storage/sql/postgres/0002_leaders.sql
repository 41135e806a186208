-- Agents coordinate here: named leader leases whose term grows at every change of
-- hands, and the members' heartbeats (as SQLite's migration 0005).

CREATE TABLE leaders (
    name       text PRIMARY KEY,
    owner      text,  -- NULL once released (the term is kept)
    term       bigint NOT NULL,
    expires_at double precision NOT NULL
);

CREATE TABLE members (
    owner     text COLLATE "C" PRIMARY KEY,
    last_seen double precision NOT NULL,
    info      jsonb NOT NULL
);
