-- perdure schema 5: schedules. Each tick starts its workflow once: the tick's instance id
-- derives from the schedule and the tick time, and firing moves next_at compare-and-set.
CREATE TABLE schedules (
    id            TEXT PRIMARY KEY,
    workflow      TEXT NOT NULL,
    input         BLOB NOT NULL,
    cron          TEXT,
    every         REAL,
    timezone      TEXT NOT NULL,
    overlap       TEXT NOT NULL,
    catchup       TEXT NOT NULL,
    paused        INTEGER NOT NULL DEFAULT 0,
    next_at       REAL NOT NULL,
    buffered_at   REAL,
    last_instance TEXT,
    created_at    REAL NOT NULL,
    updated_at    REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX schedules_due ON schedules (paused, next_at);
