-- perdure schema 1: instances, their journals, pending retries, executors.
-- The same logical schema as sqlite/0001: integers for flags, double precision for
-- epoch seconds, bytea for payloads.
CREATE TABLE perdure_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE instances (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            BYTEA NOT NULL,
    output           BYTEA,
    error            BYTEA,
    created_at       DOUBLE PRECISION NOT NULL,
    updated_at       DOUBLE PRECISION NOT NULL,
    wake_at          DOUBLE PRECISION,
    owner            TEXT,
    token            BIGINT NOT NULL DEFAULT 0,
    claim_id         TEXT,
    recoveries       INTEGER NOT NULL DEFAULT 0,
    park_reason      TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    -- Allocated at insert, not by max()+1: concurrent inserts never collide.
    seq              BIGINT GENERATED ALWAYS AS IDENTITY
);
-- What the dispatcher asks: which instances are ready, oldest wake-up first.
CREATE INDEX instances_ready ON instances (status, wake_at);
-- Listing pages newest first by a stable order.
CREATE UNIQUE INDEX instances_seq ON instances (seq);
CREATE INDEX instances_name ON instances (name, seq);
-- Recovery: the running instances of an expired executor.
CREATE INDEX instances_owner ON instances (owner, status);

CREATE TABLE journal (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    ok          INTEGER NOT NULL,
    result      BYTEA NOT NULL,
    input       BYTEA,
    attempts    INTEGER NOT NULL,
    started_at  DOUBLE PRECISION NOT NULL,
    ended_at    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (instance_id, position)
);

CREATE TABLE retries (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  BYTEA NOT NULL,
    next_at     DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (instance_id, position)
);

CREATE TABLE executors (
    id         TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL
);
