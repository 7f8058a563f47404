-- perdure schema 9: journal packs. A copy of what replay reads (kind, name, ok, result,
-- attempts) of a full run of PACK_SIZE journal entries, as one msgpack blob written when the
-- run's last entry is recorded (SQLite: in its transaction; PostgreSQL: just after, in one
-- fenced by the claim token), so that recovering a long journal decodes a few blobs instead
-- of converting ten thousands of rows. The journal's rows stay the record
-- (histories read them); a pack is a cache of them that replay may use, and a missing pack
-- only means reading rows. Continue-as-new clears the packs with the journal.
CREATE TABLE journal_packs (
    instance_id TEXT NOT NULL REFERENCES instances (id) ON DELETE CASCADE,
    first       INTEGER NOT NULL,
    data        BYTEA NOT NULL,
    PRIMARY KEY (instance_id, first)
);
