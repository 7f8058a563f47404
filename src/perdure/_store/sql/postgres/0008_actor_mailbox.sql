-- perdure schema 8: an actor's mailbox (see sqlite/0008). Messages addressed to an actor
-- wait here until a call of it takes them with perdure.recv.
CREATE TABLE actor_messages (
    actor_id    TEXT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    topic       TEXT NOT NULL,
    seq         BIGINT NOT NULL,
    payload     BYTEA NOT NULL,
    sender_key  TEXT,
    created_at  DOUBLE PRECISION NOT NULL,
    consumed    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (actor_id, topic, seq)
);
CREATE UNIQUE INDEX actor_messages_sender ON actor_messages (actor_id, sender_key);
CREATE INDEX actor_messages_pending ON actor_messages (actor_id) WHERE consumed = 0;
