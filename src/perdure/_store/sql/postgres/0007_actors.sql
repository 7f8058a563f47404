-- perdure schema 7: durable actors (see sqlite/0007). An actor is a row here; each call of
-- one of its methods is an instance (actor_id set) in its inbox; 'active' names the call
-- whose turn it is, the others wait with status 'queued' in creation order (seq).
CREATE TABLE actors (
    id            TEXT PRIMARY KEY,
    type          TEXT NOT NULL,
    key           TEXT NOT NULL,
    state         BYTEA,
    state_version INTEGER NOT NULL DEFAULT 0,
    revision      BIGINT NOT NULL DEFAULT 0,
    active        TEXT,
    invocations   BIGINT NOT NULL DEFAULT 0,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX actors_type_key ON actors (type, key);

ALTER TABLE instances ADD COLUMN actor_id TEXT;
ALTER TABLE instances ADD COLUMN state_size INTEGER;
CREATE INDEX instances_actor ON instances (actor_id, seq) WHERE actor_id IS NOT NULL;
