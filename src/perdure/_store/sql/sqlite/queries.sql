-- Named queries of the SQLite store. A block starts with "-- name: NAME".

-- name: meta_get
SELECT value FROM perdure_meta WHERE key = ?;

-- name: meta_set
INSERT INTO perdure_meta (key, value) VALUES (?, ?)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: instance_insert
INSERT OR IGNORE INTO instances
    (id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token,
     recoveries, park_reason, cancel_requested, parent_id, parent_close, deadline, actor_id, shard,
     seq)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
        (SELECT coalesce(max(seq), 0) + 1 FROM instances));

-- name: instance_fence
SELECT id, token, cancel_requested FROM instances WHERE id = ?;

-- name: instance_fences
-- The claim tokens of a set of instances (a JSON array of ids).
SELECT id, token, cancel_requested FROM instances WHERE id IN (SELECT value FROM json_each(?));

-- name: end_update
-- An instance's end (see rows.plain_end for which ends), written only if the claim token is
-- current and no cancel is asked for; if nothing is written the store applies it as any
-- append, which tells why.
UPDATE instances
SET status = ?, updated_at = ?, output = ?, error = ?, wake_at = ?, owner = ?, park_reason = ?,
    waiting_topic = ?
WHERE id = ? AND token = ? AND cancel_requested = 0;

-- name: instance_update
UPDATE instances
SET status = ?, updated_at = ?, output = ?, error = ?, wake_at = ?, owner = ?, park_reason = ?,
    waiting_topic = ?
WHERE id = ? AND token = ?;

-- name: journal_insert
INSERT OR IGNORE INTO journal
    (instance_id, position, kind, name, ok, result, input, attempts, started_at, ended_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?);

-- name: journal_insert_fenced
-- A step's record alone, as one statement (its own transaction): written only if the claim
-- token is current and no cancel is asked for. If nothing is written (that, or the entry is
-- there already) the store applies it as any append, which tells why.
INSERT OR IGNORE INTO journal
    (instance_id, position, kind, name, ok, result, input, attempts, started_at, ended_at)
SELECT id, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10 FROM instances WHERE id = ?1 AND token = ?11 AND cancel_requested = 0;

-- name: retry_upsert
INSERT INTO retries (instance_id, position, attempts, last_error, next_at)
VALUES (?, ?, ?, ?, ?)
ON CONFLICT (instance_id, position) DO UPDATE
SET attempts = excluded.attempts, last_error = excluded.last_error, next_at = excluded.next_at;

-- name: retries_clear
DELETE FROM retries WHERE instance_id = ?;

-- name: claim_repeat
SELECT id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token, recoveries, park_reason, cancel_requested, waiting_topic, run, run_input, parent_id, parent_close, deadline, actor_id, seq
FROM instances WHERE owner = ? AND claim_id = ?;

-- name: claim_ready
-- Ready: pending/waiting and due, or running under an executor whose lease expired or that
-- has no lease at all (an orphan must not stay stuck). Scans running rows: fine to ~100k.
-- Only in the shards this executor leases (a lease that lapsed claims nothing), but for work
-- overdue (due at or before :overdue, NULL: none): its shard's executor is full or slow.
UPDATE instances
SET recoveries = recoveries + (status = 'running'),
    status = 'running', owner = :executor, claim_id = :claim_id, token = token + 1,
    updated_at = :now
WHERE id IN (
    SELECT i.id FROM instances AS i
    WHERE ((i.status IN ('pending', 'waiting') AND i.wake_at <= :now)
           OR (i.status = 'running' AND NOT EXISTS (
                   SELECT 1 FROM executors AS e WHERE e.id = i.owner AND e.expires_at >= :lease_now)))
      AND (i.shard IN (SELECT shard FROM shards WHERE owner = :executor AND expires_at >= :lease_now)
           OR (i.status IN ('pending', 'waiting') AND i.wake_at <= :overdue))
    ORDER BY i.wake_at
    LIMIT :limit
)
RETURNING id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token, recoveries, park_reason, cancel_requested, waiting_topic, run, run_input, parent_id, parent_close, deadline, actor_id, seq;

-- name: executor_beat
INSERT INTO executors (id, host, pid, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at;

-- name: executor_expire
-- Kept (expired) so that the instances it owned are seen as recoverable.
UPDATE executors SET expires_at = 0 WHERE id = ?;

-- name: executors_all
SELECT e.id, e.host, e.pid, e.expires_at, (SELECT count(*) FROM shards AS s WHERE s.owner = e.id)
FROM executors AS e ORDER BY e.id;

-- name: shards_free
-- A dead or stopped executor's shards, free for the others at their next beat.
UPDATE shards SET owner = NULL, expires_at = 0 WHERE owner = ?;

-- name: shards_share
-- For LeaseShards: how many executors' leases hold (the beating one's included), and how
-- many shards this one holds.
SELECT (SELECT count(*) FROM executors WHERE expires_at >= :now),
       (SELECT count(*) FROM shards WHERE owner = :executor);

-- name: shards_release
-- Give up the excess, highest shards first.
UPDATE shards SET owner = NULL, expires_at = 0
WHERE shard IN (SELECT shard FROM shards WHERE owner = :executor ORDER BY shard DESC LIMIT :count);

-- name: shards_take
-- Take up to :count shards: first those that are free, expired, or held by an executor whose
-- lease lapsed; then, for an executor that joined, the excess of those holding more than
-- :share, each one's highest first (they learn at their next beat, and unload what they
-- run in them). Two executors taking one shard at once: the later write wins, and the
-- other finds it gone at its next beat. Claims check the owner, so one never claims there.
UPDATE shards SET owner = :executor, expires_at = :expires_at
WHERE shard IN (
    SELECT shard FROM (
        SELECT s.shard, 0 AS turn FROM shards AS s
        WHERE s.owner IS NULL OR s.expires_at < :now OR NOT EXISTS (
            SELECT 1 FROM executors AS e WHERE e.id = s.owner AND e.expires_at >= :now)
        UNION ALL
        SELECT shard, k AS turn FROM (
            SELECT s.shard,
                   row_number() OVER (PARTITION BY s.owner ORDER BY s.shard DESC) AS k,
                   count(*) OVER (PARTITION BY s.owner) AS n
            FROM shards AS s
            WHERE s.owner <> :executor AND s.expires_at >= :now AND EXISTS (
                SELECT 1 FROM executors AS e WHERE e.id = s.owner AND e.expires_at >= :now)
        ) AS held
        WHERE k <= n - :share
    ) AS candidates
    ORDER BY turn, shard
    LIMIT :count
);

-- name: shards_renew
UPDATE shards SET expires_at = :expires_at WHERE owner = :executor RETURNING shard;

-- name: cancel_request
-- Never started (pending) or stopped (parked): cancelled at once. Waiting: due now, so that
-- it runs, meets the cancellation at its wait, and can clean up. Running: told at its next commit.
UPDATE instances
SET cancel_requested = 1,
    status = CASE WHEN status IN ('pending', 'parked', 'queued') THEN 'cancelled' ELSE status END,
    owner = CASE WHEN status IN ('pending', 'parked', 'queued') THEN NULL ELSE owner END,
    wake_at = CASE WHEN status = 'waiting' THEN :now ELSE wake_at END,
    updated_at = :now
WHERE id = :id AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING status, actor_id;

-- name: resume
UPDATE instances
SET status = 'pending', wake_at = ?, updated_at = ?, park_reason = NULL, recoveries = 0,
    owner = NULL
WHERE id = ? AND status = 'parked';

-- name: status_of
SELECT status FROM instances WHERE id = ?;

-- name: instance_get
SELECT id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token, recoveries, park_reason, cancel_requested, waiting_topic, run, run_input, parent_id, parent_close, deadline, actor_id, seq
FROM instances WHERE id = ?;

-- name: instance_get_many
-- Instances by id (a JSON array): one read for many waiters.
SELECT id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token, recoveries, park_reason, cancel_requested, waiting_topic, run, run_input, parent_id, parent_close, deadline, actor_id, seq
FROM instances WHERE id IN (SELECT value FROM json_each(?));

-- name: journal_load
SELECT position, kind, name, ok, result, input, attempts, started_at, ended_at
FROM journal WHERE instance_id = ? ORDER BY position;

-- name: journal_replay
-- What replay needs, no more (kind, name, ok, result, attempts: see records.Recorded): the
-- positions are checked with journal_span, the inputs and times are for people to read.
SELECT kind, name, ok, result, attempts
FROM journal WHERE instance_id = ? AND position >= ? ORDER BY position;

-- name: journal_packs
SELECT first, data FROM journal_packs WHERE instance_id = ? ORDER BY first;

-- name: journal_chunk
-- The entries a pack holds: positions first to last, as journal_replay reads them.
SELECT kind, name, ok, result, attempts
FROM journal WHERE instance_id = ? AND position BETWEEN ? AND ? ORDER BY position;

-- name: journal_pack_insert
INSERT INTO journal_packs (instance_id, first, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING;

-- name: journal_span
SELECT (SELECT min(position) FROM journal WHERE instance_id = :id),
       (SELECT max(position) FROM journal WHERE instance_id = :id);

-- name: retries_load
SELECT position, attempts, last_error, next_at FROM retries WHERE instance_id = ?
ORDER BY position;

-- name: instance_counts
-- How many instances each (status, workflow name) has: a scan, done at metrics scrape time.
-- Actor calls are not workflows: they are counted with their actors.
SELECT status, name, count(*) FROM instances WHERE actor_id IS NULL GROUP BY status, name;

-- name: instance_list
-- Newest first; the cursor is the last seq seen.
SELECT id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token, recoveries, park_reason, cancel_requested, waiting_topic, run, run_input, parent_id, parent_close, deadline, actor_id, seq
FROM instances
WHERE (:status IS NULL OR status = :status)
  AND (:name IS NULL OR name = :name)
  AND actor_id IS NULL
  AND seq < :before
ORDER BY seq DESC
LIMIT :limit;

-- name: message_insert
-- Sequence numbers per (instance, topic) follow commit order; a repeated sender key is ignored.
INSERT OR IGNORE INTO messages (instance_id, topic, seq, payload, sender_key, created_at)
VALUES (:target, :topic,
        (SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE instance_id = :target AND topic = :topic),
        :payload, :sender_key, :now);

-- name: message_sent
SELECT 1 FROM messages WHERE instance_id = ? AND sender_key = ?;

-- name: message_wake
-- A message on the topic a waiting instance waits for makes it due now.
UPDATE instances SET wake_at = :now
WHERE id = :target AND status = 'waiting' AND waiting_topic = :topic;

-- name: waiting_recheck
-- Closes the race between "nothing yet" and "now waiting": a cancel request, a message
-- already there (for an actor's call: in the actor's mailbox too), or a child (topic '__child__:<id>') already ended, wakes it.
UPDATE instances SET wake_at = :now
WHERE id = :id AND status = 'waiting'
  AND (cancel_requested = 1
       OR EXISTS (SELECT 1 FROM messages AS m
               WHERE m.instance_id = :id AND m.topic = instances.waiting_topic AND m.consumed = 0)
       OR EXISTS (SELECT 1 FROM actor_messages AS am
                  WHERE am.actor_id = instances.actor_id AND am.topic = instances.waiting_topic
                    AND am.consumed = 0)
       OR EXISTS (SELECT 1 FROM instances AS c
                  WHERE c.id = substr(instances.waiting_topic, 11)
                    AND instances.waiting_topic = '__child__:' || c.id
                    AND c.status IN ('completed', 'failed', 'cancelled')));

-- name: parent_wake
-- A child ended: its parent, if waiting for it, is due now.
UPDATE instances SET wake_at = :now
WHERE id = (SELECT parent_id FROM instances WHERE id = :id)
  AND status = 'waiting' AND waiting_topic = '__child__:' || :id;

-- name: message_consume
-- The receiver's journal entry holds the payload now; the row stays for its sender's key.
UPDATE messages SET consumed = 1, payload = x'' WHERE instance_id = ? AND topic = ? AND seq = ?;

-- name: message_next
SELECT seq, payload FROM messages
WHERE instance_id = ? AND topic = ? AND consumed = 0
ORDER BY seq LIMIT 1;

-- name: event_set
INSERT INTO events (instance_id, key, value, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;

-- name: event_get
SELECT value FROM events WHERE instance_id = ? AND key = ?;

-- name: run_archive
-- The run that ends: its input and journal length, before the journal goes.
INSERT OR IGNORE INTO runs (instance_id, run, input, steps, ended_at)
SELECT id, run, coalesce(run_input, input), (SELECT count(*) FROM journal WHERE instance_id = :id), :now
FROM instances WHERE id = :id;

-- name: run_clear_journal
DELETE FROM journal WHERE instance_id = :id;

-- name: run_clear_packs
DELETE FROM journal_packs WHERE instance_id = :id;

-- name: run_clear_retries
DELETE FROM retries WHERE instance_id = :id;

-- name: run_next
-- The token moves too: a retry of this batch (its acknowledgement lost) is then stale and
-- changes nothing, instead of starting yet another run.
UPDATE instances SET run = run + 1, run_input = :input, token = token + 1 WHERE id = :id;

-- name: runs_load
SELECT run, input, steps, ended_at FROM runs WHERE instance_id = ? ORDER BY run;

-- name: children_close
-- The parent ended: its children that have not, and are not abandoned, are cancelled.
-- 'terminate' ends the ones that are not running at once; the others (and all under
-- 'request_cancel') get a cancel request and run their cleanup.
UPDATE instances
SET cancel_requested = 1,
    status = CASE WHEN status IN ('pending', 'parked')
                    OR (parent_close = 'terminate' AND status = 'waiting') THEN 'cancelled'
                  ELSE status END,
    owner = CASE WHEN status IN ('pending', 'parked')
                   OR (parent_close = 'terminate' AND status = 'waiting') THEN NULL
                 ELSE owner END,
    wake_at = CASE WHEN status = 'waiting' THEN :now ELSE wake_at END,
    updated_at = :now
WHERE parent_id = :id AND parent_close != 'abandon'
  AND status NOT IN ('completed', 'failed', 'cancelled');

-- name: schedule_insert
INSERT OR IGNORE INTO schedules
    (id, workflow, input, cron, every, timezone, overlap, catchup, paused, next_at, buffered_at,
     last_instance, created_at, updated_at)
VALUES (:id, :workflow, :input, :cron, :every, :timezone, :overlap, :catchup, :paused, :next_at,
        :buffered_at, :last_instance, :created_at, :updated_at);

-- name: schedule_fire
-- Compare-and-set on next_at: of two executors firing one tick, one wins.
UPDATE schedules
SET next_at = :new_next_at, buffered_at = :buffered_at,
    last_instance = coalesce(:last_instance, last_instance), updated_at = :now
WHERE id = :id AND next_at = :expected_next_at AND buffered_at IS :expected_buffered_at;

-- name: schedule_pause
UPDATE schedules SET paused = :paused, next_at = coalesce(:next_at, next_at), updated_at = :now
WHERE id = :id;

-- name: schedule_delete
DELETE FROM schedules WHERE id = ?;

-- name: schedule_get
SELECT id, workflow, input, cron, every, timezone, overlap, catchup, paused, next_at, buffered_at,
       last_instance, created_at, updated_at
FROM schedules WHERE id = ?;

-- name: schedules_due
-- Due ticks, and buffered ticks waiting for the previous run to end.
SELECT id, workflow, input, cron, every, timezone, overlap, catchup, paused, next_at, buffered_at,
       last_instance, created_at, updated_at
FROM schedules WHERE paused = 0 AND (next_at <= :now OR buffered_at IS NOT NULL)
ORDER BY next_at LIMIT :limit;

-- name: schedules_all
SELECT id, workflow, input, cron, every, timezone, overlap, catchup, paused, next_at, buffered_at,
       last_instance, created_at, updated_at
FROM schedules ORDER BY id;

-- name: next_wake_at
-- The earliest durable wake-up: a waiting instance's, or a schedule's next tick.
SELECT min(t) FROM (
    SELECT min(wake_at) AS t FROM instances WHERE status = 'waiting'
    UNION ALL
    SELECT min(next_at) AS t FROM schedules WHERE paused = 0
);

-- name: actor_insert
INSERT OR IGNORE INTO actors (id, type, key, created_at, updated_at) VALUES (?, ?, ?, ?, ?);

-- name: actor_take_turn
-- An idle actor's turn goes to this invocation; RETURNING says whose turn it is now.
UPDATE actors SET active = coalesce(active, :id) WHERE id = :actor
RETURNING id, type, key, state, state_version, revision, active, invocations, created_at, updated_at;

-- name: actor_save
UPDATE actors SET state = :state, state_version = :version, revision = revision + 1, updated_at = :now
WHERE id = :actor AND active = :id;

-- name: invocation_state_size
UPDATE instances SET state_size = :size WHERE id = :id;

-- name: actor_next_turn
-- The invocation whose turn it was ended: the oldest queued one is next.
UPDATE actors
SET invocations = invocations + 1, updated_at = :now,
    active = (SELECT i.id FROM instances AS i
              WHERE i.actor_id = :actor AND i.status = 'queued' ORDER BY i.seq LIMIT 1)
WHERE id = :actor AND active = :id;

-- name: actor_wake
UPDATE instances SET status = 'pending', wake_at = :now, updated_at = :now
WHERE id = (SELECT active FROM actors WHERE id = :actor) AND status = 'queued';

-- name: actor_direct_update
-- A call that ran directly on an idle actor (DirectCall) ends: recorded only if no call has
-- the turn and the state is still the one it ran on.
UPDATE actors
SET state = coalesce(:state, state), state_version = coalesce(:version, state_version),
    revision = :new_revision, invocations = invocations + 1, updated_at = :now
WHERE id = :actor AND active IS NULL AND revision = :revision;

-- name: actor_direct_create
-- The first call of an actor ran directly (DirectCall): the actor with its state, unless
-- another call created it meanwhile.
INSERT OR IGNORE INTO actors
    (id, type, key, state, state_version, revision, invocations, created_at, updated_at)
VALUES (:actor, :type, :key, :state, coalesce(:version, 0), :new_revision, 1, :now, :now);

-- name: direct_invocation_insert
-- The call of a DirectCall, ended, with the size of the state it saved (NULL: unchanged):
-- instance_insert and invocation_state_size in one statement.
INSERT OR IGNORE INTO instances
    (id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token,
     recoveries, park_reason, cancel_requested, parent_id, parent_close, deadline, actor_id,
     shard, state_size, seq)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
        (SELECT coalesce(max(seq), 0) + 1 FROM instances));

-- name: actor_get
SELECT id, type, key, state, state_version, revision, active, invocations, created_at, updated_at,
       (SELECT count(*) FROM actor_messages AS m WHERE m.actor_id = actors.id AND m.consumed = 0)
FROM actors WHERE id = ?;

-- name: actor_get_many
-- Actors by id (a JSON array): one read for many calls.
-- Without the mailbox count (actor_row makes it 0): running calls do not need it.
SELECT id, type, key, state, state_version, revision, active, invocations, created_at, updated_at
FROM actors WHERE id IN (SELECT value FROM json_each(?));

-- name: actor_list
-- By type and key; the cursor is the last id seen.
SELECT id, type, key, state, state_version, revision, active, invocations, created_at, updated_at,
       (SELECT count(*) FROM actor_messages AS m WHERE m.actor_id = actors.id AND m.consumed = 0)
FROM actors
WHERE (:type IS NULL OR type = :type)
  AND (:prefix IS NULL OR substr(key, 1, length(:prefix)) = :prefix)
  AND (:busy IS NULL OR (active IS NOT NULL) = :busy)
  AND id > :after
ORDER BY id
LIMIT :limit;

-- name: actor_oplog
-- An actor's invocations in inbox order; the cursor is the last seq seen.
SELECT id, name, status, input, output, error, created_at, updated_at, state_size, seq
FROM instances
WHERE actor_id = :actor AND seq > :after
ORDER BY seq
LIMIT :limit;

-- name: actor_delete_invocations
DELETE FROM instances WHERE actor_id = ?;

-- name: actor_delete
DELETE FROM actors WHERE id = ? AND active IS NULL;

-- name: mailbox_open
-- A message to an actor that was never called: the actor exists from now on (idle, no state),
-- so that it is listed, shows its mailbox, and deleting it deletes the mailbox.
INSERT OR IGNORE INTO actors (id, type, key, created_at, updated_at)
VALUES (:actor, :type, :key, :now, :now);

-- name: mailbox_insert
-- Sequence numbers per (actor, topic) follow commit order; a repeated sender key is ignored.
INSERT OR IGNORE INTO actor_messages (actor_id, topic, seq, payload, sender_key, created_at)
VALUES (:actor, :topic,
        (SELECT coalesce(max(seq), 0) + 1 FROM actor_messages
         WHERE actor_id = :actor AND topic = :topic),
        :payload, :sender_key, :now);

-- name: mailbox_wake
-- The call whose turn it is, if it waits for a message on this topic, is due now.
UPDATE instances SET wake_at = :now
WHERE id = (SELECT active FROM actors WHERE id = :actor)
  AND status = 'waiting' AND waiting_topic = :topic;

-- name: mailbox_next
SELECT seq, payload FROM actor_messages
WHERE actor_id = ? AND topic = ? AND consumed = 0
ORDER BY seq LIMIT 1;

-- name: mailbox_consume
UPDATE actor_messages SET consumed = 1, payload = x'' WHERE actor_id = ? AND topic = ? AND seq = ?;
