-- perdure schema 3: continue-as-new. An instance runs again and again under one id;
-- each finished run leaves a line here and its journal is dropped, so it stays bounded.
CREATE TABLE runs (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    run         INTEGER NOT NULL,
    input       BYTEA NOT NULL,
    steps       INTEGER NOT NULL,
    ended_at    DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (instance_id, run)
);

ALTER TABLE instances ADD COLUMN run INTEGER NOT NULL DEFAULT 0;
-- The current run's input when it differs from the first (which idempotent start compares).
ALTER TABLE instances ADD COLUMN run_input BYTEA;
