-- perdure schema 10: shards. Every instance belongs to one of 64 shards (rows.shard_of: a
-- hash of its actor's id for an actor's calls, else of its own id; instances older than this
-- schema by their seq), and an executor claims only the instances of the shards it leases.
-- Executors lease shards by heartbeat and share them out evenly (LeaseShards): one that joins
-- gets its share as the others give theirs up, and a dead one's shards go to the living.
ALTER TABLE instances ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
UPDATE instances SET shard = seq % 64;
CREATE TABLE shards (
    shard      INTEGER PRIMARY KEY,
    owner      TEXT,
    expires_at REAL NOT NULL DEFAULT 0
);
WITH RECURSIVE n(shard) AS (SELECT 0 UNION ALL SELECT shard + 1 FROM n WHERE shard < 63)
INSERT INTO shards (shard) SELECT shard FROM n;
