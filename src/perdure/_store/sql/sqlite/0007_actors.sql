-- perdure schema 7: durable actors. An actor is a row here; each invocation of one of its
-- methods is an instance (actor_id set) whose journal holds the invocation's operations.
-- Invocations of one actor run one at a time: 'active' names the one whose turn it is, the
-- others wait with status 'queued' in creation order (seq).
CREATE TABLE actors (
    id            TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    key           TEXT NOT NULL,
    state         BLOB,
    state_version INTEGER NOT NULL DEFAULT 0,
    revision      INTEGER NOT NULL DEFAULT 0,
    active        TEXT,
    invocations   INTEGER NOT NULL DEFAULT 0,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX actors_type_key ON actors (type, key);

ALTER TABLE instances ADD COLUMN actor_id TEXT;
-- Size in bytes of the state an invocation committed (NULL: unchanged or none).
ALTER TABLE instances ADD COLUMN state_size INTEGER;
CREATE INDEX instances_actor ON instances (actor_id, seq) WHERE actor_id IS NOT NULL;
