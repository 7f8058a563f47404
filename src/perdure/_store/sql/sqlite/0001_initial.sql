-- perdure schema 1: instances, their journals, pending retries, executors.
CREATE TABLE perdure_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE instances (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            BLOB NOT NULL,
    output           BLOB,
    error            BLOB,
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    wake_at          REAL,
    owner            TEXT,
    token            INTEGER NOT NULL DEFAULT 0,
    claim_id         TEXT,
    recoveries       INTEGER NOT NULL DEFAULT 0,
    park_reason      TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    seq              INTEGER NOT NULL
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
    result      BLOB NOT NULL,
    input       BLOB,
    attempts    INTEGER NOT NULL,
    started_at  REAL NOT NULL,
    ended_at    REAL NOT NULL,
    PRIMARY KEY (instance_id, position)
) WITHOUT ROWID;

CREATE TABLE retries (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    last_error  BLOB NOT NULL,
    next_at     REAL NOT NULL,
    PRIMARY KEY (instance_id, position)
) WITHOUT ROWID;

CREATE TABLE executors (
    id         TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
