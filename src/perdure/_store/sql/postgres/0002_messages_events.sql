-- perdure schema 2: messages between instances and from clients; published events.
CREATE TABLE messages (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    topic       TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    payload     BYTEA NOT NULL,
    sender_key  TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    consumed    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (instance_id, topic, seq)
);
-- A sender (an instance's journal position, or a client's idempotency key) delivers once.
CREATE UNIQUE INDEX messages_sender ON messages (instance_id, sender_key);

CREATE TABLE events (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    value       BYTEA NOT NULL,
    updated_at  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (instance_id, key)
);

-- The topic a waiting instance waits on: a message on it wakes the instance.
ALTER TABLE instances ADD COLUMN waiting_topic TEXT;
