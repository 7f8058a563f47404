-- perdure schema 5: schedules. Each tick starts its workflow once: the tick's instance id
-- derives from the schedule and the tick time, and firing moves next_at compare-and-set.
CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    workflow      TEXT NOT NULL,
    input         BYTEA NOT NULL,
    cron          TEXT,
    every         DOUBLE PRECISION,
    timezone      TEXT NOT NULL,
    overlap       TEXT NOT NULL,
    catchup       TEXT NOT NULL,
    paused        INTEGER NOT NULL DEFAULT 0,
    next_at       DOUBLE PRECISION NOT NULL,
    buffered_at   DOUBLE PRECISION,
    last_instance TEXT,
    created_at    DOUBLE PRECISION NOT NULL,
    updated_at    DOUBLE PRECISION NOT NULL
);
CREATE INDEX schedules_due ON schedules (paused, next_at);
