-- perdure schema 8: an actor's mailbox. Messages addressed to an actor (type/key) rather than
-- to one of its calls: they wait here until a call of the actor takes them with perdure.recv,
-- consumed with that call's journal entry. Like 'messages', sequence numbers per (actor, topic)
-- follow commit order and a sender key delivers once. Deleting the actor deletes its mailbox.
CREATE TABLE actor_messages (
    actor_id    TEXT NOT NULL REFERENCES actors (id) ON DELETE CASCADE,
    topic       TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    sender_key  TEXT,
    created_at  REAL NOT NULL,
    consumed    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (actor_id, topic, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX actor_messages_sender ON actor_messages (actor_id, sender_key);
-- What actor_info counts: the messages still waiting.
CREATE INDEX actor_messages_pending ON actor_messages (actor_id) WHERE consumed = 0;
