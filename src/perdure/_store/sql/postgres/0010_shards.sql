-- perdure schema 10: shards (see sqlite/0010). An executor claims only the instances of
-- the shards it leases; executors share the 64 shards out evenly by heartbeat.
ALTER TABLE instances ADD COLUMN shard INTEGER NOT NULL DEFAULT 0;
UPDATE instances SET shard = seq % 64;
CREATE TABLE shards (
    shard      INTEGER PRIMARY KEY,
    owner      TEXT,
    expires_at DOUBLE PRECISION NOT NULL DEFAULT 0
);
INSERT INTO shards (shard) SELECT generate_series(0, 63);
