-- Named queries of the PostgreSQL store. A block starts with "-- name: NAME".
-- The same statements as sqlite/queries.sql, in psycopg's placeholders (%s, %(name)s);
-- where PostgreSQL's READ COMMITTED needs more than SQLite's single writer, it says why.

-- name: meta_get
SELECT value FROM perdure_meta WHERE key = %s;

-- name: meta_all
SELECT key, value FROM perdure_meta;

-- name: meta_set
INSERT INTO perdure_meta (key, value) VALUES (%s, %s)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: tables
SELECT tablename FROM pg_tables WHERE schemaname = current_schema();

-- name: migrate_lock
-- Executors starting at once on a fresh database: one migrates, the others wait, then
-- find it done. Per schema, so databases in other schemas migrate independently.
SELECT pg_advisory_xact_lock(hashtextextended('perdure-migrate:' || current_schema(), 0));

-- name: instance_insert
INSERT INTO instances
    (id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token,
     recoveries, park_reason, cancel_requested, parent_id, parent_close, deadline, actor_id, shard)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING;

-- name: instance_create
-- Many rows in one statement (the VALUES tuple repeats); the ids it returns were new.
INSERT INTO instances
    (id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token,
     recoveries, park_reason, cancel_requested, parent_id, parent_close, deadline, actor_id, shard)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (id) DO NOTHING
RETURNING id;

-- name: instance_fences
-- The claim tokens of a set of instances, locked until the commit: a claim (which moves the
-- token) waits or skips them, so the token read here stays true for every write that follows.
-- Locked in id order, so two batches never wait on each other in a cycle.
SELECT id, token, cancel_requested FROM instances WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE;

-- name: fences_current
-- The guard of an optimistic commit, right after instance_fences locked the rows: fails
-- (division by zero), and so commits nothing, unless every (id, token) pair of the batch is
-- current. The writes queued behind it then never land for a stale claim.
SELECT 1 / ((SELECT count(*) FROM instances
             WHERE (id, token) IN (SELECT * FROM unnest(%(ids)s::text[], %(tokens)s::bigint[])))
            = %(n)s)::int;

-- name: append_entry
-- The hot path, one statement: an instance's claim token locked and checked, and one journal
-- entry written if it is current. Alone in its (implicit) transaction, prepared once per
-- connection, so a step costs one round trip and little client CPU. READ COMMITTED: the lock
-- waits for a claim in flight and then reads the token it wrote, so a stale entry never lands.
-- Returns the token and cancel flag as locked; no row if the instance does not exist.
WITH fence AS (
    SELECT id, token, cancel_requested FROM instances WHERE id = %s FOR NO KEY UPDATE
), entry AS (
    INSERT INTO journal
        (instance_id, position, kind, name, ok, result, input, attempts, started_at, ended_at)
    SELECT id, %s::integer, %s::text, %s::text, %s::integer, %s::bytea, %s::bytea, %s::integer,
           %s::double precision, %s::double precision
    FROM fence WHERE token = %s::bigint
    ON CONFLICT DO NOTHING
)
SELECT token, cancel_requested FROM fence;

-- name: end_entry
-- An instance's end with the record of the step before it (deferred to share this commit),
-- as one statement: the claim token locked and checked as in append_entry, the entry and
-- the row's new values written only if it is current (see rows.plain_end for which ends).
WITH fence AS (
    SELECT id, token, cancel_requested FROM instances WHERE id = %s FOR NO KEY UPDATE
), entry AS (
    INSERT INTO journal
        (instance_id, position, kind, name, ok, result, input, attempts, started_at, ended_at)
    SELECT id, %s, %s, %s, %s, %s, %s, %s, %s, %s FROM fence WHERE token = %s
    ON CONFLICT DO NOTHING
), ended AS (
    UPDATE instances
    SET status = %s, updated_at = %s, output = %s, error = %s, wake_at = %s, owner = %s,
        park_reason = %s, waiting_topic = %s
    WHERE id = (SELECT id FROM fence WHERE token = %s)
)
SELECT token, cancel_requested FROM fence;

-- name: end_update
-- An instance's end alone, fenced by its claim token: no row back if the token moved.
UPDATE instances
SET status = %s, updated_at = %s, output = %s, error = %s, wake_at = %s, owner = %s, park_reason = %s,
    waiting_topic = %s
WHERE id = %s AND token = %s
RETURNING token, cancel_requested;

-- name: instance_update
UPDATE instances
SET status = %s, updated_at = %s, output = %s, error = %s, wake_at = %s, owner = %s, park_reason = %s,
    waiting_topic = %s
WHERE id = %s AND token = %s;

-- name: journal_insert
INSERT INTO journal
    (instance_id, position, kind, name, ok, result, input, attempts, started_at, ended_at)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT DO NOTHING;

-- name: retry_upsert
INSERT INTO retries (instance_id, position, attempts, last_error, next_at)
VALUES (%s, %s, %s, %s, %s)
ON CONFLICT (instance_id, position) DO UPDATE
SET attempts = excluded.attempts, last_error = excluded.last_error, next_at = excluded.next_at;

-- name: retries_clear
DELETE FROM retries WHERE instance_id = %s;

-- name: claim
-- One statement (one round trip, alone in its transaction): the rows this claim took
-- already, if a retried commit finds its first attempt landed (``again``), else new ones.
-- Ready: pending/waiting and due, or running under an executor whose lease expired or that
-- has no lease at all. SKIP LOCKED: executors claiming at once take disjoint rows, and a row
-- its owner is committing to right now (locked by instance_fences) waits for the next claim.
-- Only in the shards this executor leases (a lease that lapsed claims nothing), but for work
-- overdue (due at or before overdue, NULL: none): its shard's executor is full or slow.
WITH again AS (
    SELECT id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token, recoveries, park_reason, cancel_requested, waiting_topic, run, run_input, parent_id, parent_close, deadline, actor_id, seq
    FROM instances WHERE owner = %(executor)s AND claim_id = %(claim_id)s
), mine AS (
    SELECT shard FROM shards WHERE owner = %(executor)s AND expires_at >= %(lease_now)s
), due AS (
    SELECT id, wake_at FROM instances
    WHERE status IN ('pending', 'waiting') AND wake_at <= %(now)s AND NOT EXISTS (SELECT 1 FROM again)
      AND (shard IN (SELECT shard FROM mine) OR wake_at <= %(overdue)s)
    ORDER BY wake_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), orphans AS (
    SELECT i.id, i.wake_at FROM instances AS i
    WHERE i.status = 'running' AND NOT EXISTS (SELECT 1 FROM again) AND NOT EXISTS (
        SELECT 1 FROM executors AS e WHERE e.id = i.owner AND e.expires_at >= %(lease_now)s)
      AND i.shard IN (SELECT shard FROM mine)
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT id FROM (SELECT * FROM due UNION ALL SELECT * FROM orphans) AS ready
    ORDER BY wake_at
    LIMIT %(limit)s
), taken AS (
    UPDATE instances AS u
    SET recoveries = u.recoveries + (u.status = 'running')::int,
        status = 'running', owner = %(executor)s, claim_id = %(claim_id)s, token = u.token + 1,
        updated_at = %(now)s
    FROM picked
    WHERE u.id = picked.id
    RETURNING u.id, u.name, u.status, u.input, u.output, u.error, u.created_at, u.updated_at, u.wake_at, u.owner, u.token, u.recoveries, u.park_reason, u.cancel_requested, u.waiting_topic, u.run, u.run_input, u.parent_id, u.parent_close, u.deadline, u.actor_id, u.seq
)
SELECT * FROM again UNION ALL SELECT * FROM taken;

-- name: executor_beat
INSERT INTO executors (id, host, pid, expires_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (id) DO UPDATE SET expires_at = excluded.expires_at;

-- name: executor_expire
-- Kept (expired) so that the instances it owned are seen as recoverable.
UPDATE executors SET expires_at = 0 WHERE id = %s;

-- name: executors_all
SELECT e.id, e.host, e.pid, e.expires_at, (SELECT count(*) FROM shards AS s WHERE s.owner = e.id)
FROM executors AS e ORDER BY e.id;

-- name: shards_free
UPDATE shards SET owner = NULL, expires_at = 0 WHERE owner = %s;

-- name: shards_share
SELECT (SELECT count(*) FROM executors WHERE expires_at >= %(now)s),
       (SELECT count(*) FROM shards WHERE owner = %(executor)s);

-- name: shards_release
UPDATE shards SET owner = NULL, expires_at = 0
WHERE shard IN (
    SELECT shard FROM shards WHERE owner = %(executor)s ORDER BY shard DESC LIMIT %(count)s
);

-- name: shards_take
-- Take up to :count shards: first those that are free, expired, or held by an executor whose
-- lease lapsed; then, for an executor that joined, the excess of those holding more than
-- :share, each one's highest first (they learn at their next beat, and unload what they
-- run in them). Two executors taking one shard at once: the later write wins, and the
-- other finds it gone at its next beat. Claims check the owner, so one never claims there.
UPDATE shards SET owner = %(executor)s, expires_at = %(expires_at)s
WHERE shard IN (
    SELECT shard FROM (
        SELECT s.shard, 0 AS turn FROM shards AS s
        WHERE s.owner IS NULL OR s.expires_at < %(now)s OR NOT EXISTS (
            SELECT 1 FROM executors AS e WHERE e.id = s.owner AND e.expires_at >= %(now)s)
        UNION ALL
        SELECT shard, k AS turn FROM (
            SELECT s.shard,
                   row_number() OVER (PARTITION BY s.owner ORDER BY s.shard DESC) AS k,
                   count(*) OVER (PARTITION BY s.owner) AS n
            FROM shards AS s
            WHERE s.owner <> %(executor)s AND s.expires_at >= %(now)s AND EXISTS (
                SELECT 1 FROM executors AS e WHERE e.id = s.owner AND e.expires_at >= %(now)s)
        ) AS held
        WHERE k <= n - %(share)s
    ) AS candidates
    ORDER BY turn, shard
    LIMIT %(count)s
);

-- name: shards_renew
UPDATE shards SET expires_at = %(expires_at)s WHERE owner = %(executor)s RETURNING shard;

-- name: cancel_request
-- Never started (pending) or stopped (parked): cancelled at once. Waiting: due now, so that
-- it runs, meets the cancellation at its wait, and can clean up. Running: told at its next commit.
UPDATE instances
SET cancel_requested = 1,
    status = CASE WHEN status IN ('pending', 'parked', 'queued') THEN 'cancelled' ELSE status END,
    owner = CASE WHEN status IN ('pending', 'parked', 'queued') THEN NULL ELSE owner END,
    wake_at = CASE WHEN status = 'waiting' THEN %(now)s ELSE wake_at END,
    updated_at = %(now)s
WHERE id = %(id)s AND status NOT IN ('completed', 'failed', 'cancelled')
RETURNING status, actor_id;

-- name: resume
UPDATE instances
SET status = 'pending', wake_at = %s, updated_at = %s, park_reason = NULL, recoveries = 0,
    owner = NULL
WHERE id = %s AND status = 'parked';

-- name: status_of
SELECT status FROM instances WHERE id = %s;

-- name: instance_get
SELECT id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token, recoveries, park_reason, cancel_requested, waiting_topic, run, run_input, parent_id, parent_close, deadline, actor_id, seq
FROM instances WHERE id = %s;

-- name: instance_get_many
SELECT id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token, recoveries, park_reason, cancel_requested, waiting_topic, run, run_input, parent_id, parent_close, deadline, actor_id, seq
FROM instances WHERE id = ANY(%s);

-- name: journal_load
SELECT position, kind, name, ok::boolean, result, input, attempts, started_at, ended_at
FROM journal WHERE instance_id = %s ORDER BY position;

-- name: journal_replay
-- What replay needs, no more (kind, name, ok, result, attempts: see records.Recorded): the
-- positions are checked with journal_span, the inputs and times are for people to read.
SELECT kind, name, ok::boolean, result, attempts
FROM journal WHERE instance_id = %s AND position >= %s ORDER BY position;

-- name: journal_packs
SELECT first, data FROM journal_packs WHERE instance_id = %s ORDER BY first;

-- name: journal_chunk
-- The entries a pack holds: positions first to last, as journal_replay reads them.
SELECT kind, name, ok::boolean, result, attempts
FROM journal WHERE instance_id = %s AND position BETWEEN %s AND %s ORDER BY position;

-- name: pack_fence
-- A pack is written under the claim that recorded its entries: the row stays locked until
-- the pack is in, so a continue-as-new (a new token, the packs cleared) comes after it.
SELECT 1 FROM instances WHERE id = %s AND token = %s FOR SHARE;

-- name: journal_pack_insert
INSERT INTO journal_packs (instance_id, first, data) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING;

-- name: journal_span
SELECT (SELECT min(position) FROM journal WHERE instance_id = %(id)s),
       (SELECT max(position) FROM journal WHERE instance_id = %(id)s);

-- name: retries_load
SELECT position, attempts, last_error, next_at FROM retries WHERE instance_id = %s
ORDER BY position;

-- name: instance_list
-- Newest first; the cursor is the last seq seen.
SELECT id, name, status, input, output, error, created_at, updated_at, wake_at, owner, token, recoveries, park_reason, cancel_requested, waiting_topic, run, run_input, parent_id, parent_close, deadline, actor_id, seq
FROM instances
WHERE (%(status)s::text IS NULL OR status = %(status)s::text)
  AND (%(name)s::text IS NULL OR name = %(name)s::text)
  AND actor_id IS NULL
  AND seq < %(before)s
ORDER BY seq DESC
LIMIT %(limit)s;

-- name: message_lock
-- The target's row, locked to the commit before a message goes in. Sequence numbers are
-- max + 1 per (instance, topic): senders on one topic take turns. And an instance that starts
-- waiting holds its own row (instance_fences): a message either commits first (the wait's
-- waiting_recheck sees it) or waits for the wait to commit (message_wake sees it). Taken in
-- a statement of its own, so the statements after it see what the previous holder committed.
SELECT 1 FROM instances WHERE id = %(target)s FOR NO KEY UPDATE;

-- name: parent_lock
-- The same turn-taking for a child that ends and its parent that starts waiting for it.
SELECT 1 FROM instances
WHERE id = (SELECT parent_id FROM instances WHERE id = %(id)s) FOR NO KEY UPDATE;

-- name: message_insert
-- Sequence numbers per (instance, topic) follow commit order; a repeated sender key is ignored.
INSERT INTO messages (instance_id, topic, seq, payload, sender_key, created_at)
VALUES (%(target)s, %(topic)s,
        (SELECT coalesce(max(seq), 0) + 1 FROM messages WHERE instance_id = %(target)s AND topic = %(topic)s),
        %(payload)s, %(sender_key)s, %(now)s)
ON CONFLICT DO NOTHING;

-- name: message_sent
SELECT 1 FROM messages WHERE instance_id = %s AND sender_key = %s;

-- name: message_wake
-- A message on the topic a waiting instance waits for makes it due now.
UPDATE instances SET wake_at = %(now)s
WHERE id = %(target)s AND status = 'waiting' AND waiting_topic = %(topic)s;

-- name: waiting_recheck
-- Closes the race between "nothing yet" and "now waiting": a cancel request, a message
-- already there (for an actor's call: in the actor's mailbox too), or a child (topic '__child__:<id>') already ended, wakes it.
UPDATE instances SET wake_at = %(now)s
WHERE id = %(id)s AND status = 'waiting'
  AND (cancel_requested = 1
       OR EXISTS (SELECT 1 FROM messages AS m
               WHERE m.instance_id = %(id)s AND m.topic = instances.waiting_topic AND m.consumed = 0)
       OR EXISTS (SELECT 1 FROM actor_messages AS am
                  WHERE am.actor_id = instances.actor_id AND am.topic = instances.waiting_topic
                    AND am.consumed = 0)
       OR EXISTS (SELECT 1 FROM instances AS c
                  WHERE c.id = substr(instances.waiting_topic, 11)
                    AND instances.waiting_topic = '__child__:' || c.id
                    AND c.status IN ('completed', 'failed', 'cancelled')));

-- name: parent_wake
-- A child ended: its parent, if waiting for it, is due now, and the other executors are told
-- (the parent may be anybody's to claim; a child's end that wakes nobody sends no NOTIFY).
WITH woke AS (
    UPDATE instances SET wake_at = %(now)s
    WHERE id = (SELECT parent_id FROM instances WHERE id = %(id)s)
      AND status = 'waiting' AND waiting_topic = '__child__:' || %(id)s
    RETURNING id
)
SELECT pg_notify(current_setting('perdure.wake_channel'), '') FROM woke;

-- name: message_consume
-- The receiver's journal entry holds the payload now; the row stays for its sender's key.
UPDATE messages SET consumed = 1, payload = ''::bytea WHERE instance_id = %s AND topic = %s AND seq = %s;

-- name: message_next
SELECT seq, payload FROM messages
WHERE instance_id = %s AND topic = %s AND consumed = 0
ORDER BY seq LIMIT 1;

-- name: event_set
INSERT INTO events (instance_id, key, value, updated_at) VALUES (%s, %s, %s, %s)
ON CONFLICT (instance_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at;

-- name: event_get
SELECT value FROM events WHERE instance_id = %s AND key = %s;

-- name: run_archive
-- The run that ends: its input and journal length, before the journal goes.
INSERT INTO runs (instance_id, run, input, steps, ended_at)
SELECT id, run, coalesce(run_input, input), (SELECT count(*) FROM journal WHERE instance_id = %(id)s), %(now)s
FROM instances WHERE id = %(id)s
ON CONFLICT DO NOTHING;

-- name: run_clear_journal
DELETE FROM journal WHERE instance_id = %(id)s;

-- name: run_clear_packs
DELETE FROM journal_packs WHERE instance_id = %(id)s;

-- name: run_clear_retries
DELETE FROM retries WHERE instance_id = %(id)s;

-- name: run_next
-- The token moves too: a retry of this batch (its acknowledgement lost) is then stale and
-- changes nothing, instead of starting yet another run.
UPDATE instances SET run = run + 1, run_input = %(input)s, token = token + 1 WHERE id = %(id)s;

-- name: runs_load
SELECT run, input, steps, ended_at FROM runs WHERE instance_id = %s ORDER BY run;

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
    wake_at = CASE WHEN status = 'waiting' THEN %(now)s ELSE wake_at END,
    updated_at = %(now)s
WHERE parent_id = %(id)s AND parent_close != 'abandon'
  AND status NOT IN ('completed', 'failed', 'cancelled');

-- name: schedule_insert
INSERT INTO schedules
    (id, workflow, input, cron, every, timezone, overlap, catchup, paused, next_at, buffered_at,
     last_instance, created_at, updated_at)
VALUES (%(id)s, %(workflow)s, %(input)s, %(cron)s, %(every)s, %(timezone)s, %(overlap)s, %(catchup)s,
        %(paused)s, %(next_at)s, %(buffered_at)s, %(last_instance)s, %(created_at)s, %(updated_at)s)
ON CONFLICT (id) DO NOTHING;

-- name: schedule_fire
-- Compare-and-set on next_at: of two executors firing one tick, one wins.
UPDATE schedules
SET next_at = %(new_next_at)s, buffered_at = %(buffered_at)s,
    last_instance = coalesce(%(last_instance)s::text, last_instance), updated_at = %(now)s
WHERE id = %(id)s AND next_at = %(expected_next_at)s
  AND buffered_at IS NOT DISTINCT FROM %(expected_buffered_at)s::double precision;

-- name: schedule_pause
UPDATE schedules
SET paused = %(paused)s, next_at = coalesce(%(next_at)s::double precision, next_at), updated_at = %(now)s
WHERE id = %(id)s;

-- name: schedule_delete
DELETE FROM schedules WHERE id = %s;

-- name: schedule_get
SELECT id, workflow, input, cron, every, timezone, overlap, catchup, paused, next_at, buffered_at,
       last_instance, created_at, updated_at
FROM schedules WHERE id = %s;

-- name: schedules_due
-- Due ticks, and buffered ticks waiting for the previous run to end.
SELECT id, workflow, input, cron, every, timezone, overlap, catchup, paused, next_at, buffered_at,
       last_instance, created_at, updated_at
FROM schedules WHERE paused = 0 AND (next_at <= %(now)s OR buffered_at IS NOT NULL)
ORDER BY next_at LIMIT %(limit)s;

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
) AS wakes;

-- name: wake_channel_set
-- The channel of this schema's wake-ups, for the session's statements that NOTIFY (named as
-- postgres.wake_channel names it: "perdure:" and the schema, or the schema's md5 where that
-- passes the 63 bytes of a name).
SELECT set_config('perdure.wake_channel', CASE
    WHEN octet_length('perdure:' || current_schema()) <= 63 THEN 'perdure:' || current_schema()
    ELSE 'perdure:' || md5(current_schema()) END, false);

-- name: schema_state
-- The schema's name and whether it has a perdure_meta: an engine opening an up-to-date
-- database needs no migration connection (nor its lock).
SELECT current_schema(), to_regclass(quote_ident(current_schema()) || '.perdure_meta') IS NOT NULL;

-- name: wake
-- Tells the other executors on this schema that work may be ready (LISTEN/NOTIFY).
SELECT pg_notify(current_setting('perdure.wake_channel'), '');

-- name: instance_counts
SELECT status, name, count(*) FROM instances WHERE actor_id IS NULL GROUP BY status, name;

-- name: actor_enqueue
-- An actor call into its actor's inbox, unless its id exists: the actor is created if new,
-- and its turn goes to this call if no other has it (the upsert locks the actor's row, so
-- calls and ends of calls of one actor take turns). RETURNING: the status stored and the
-- actor as it stands; no row if the id existed.
WITH new AS (
    SELECT %(id)s::text AS id WHERE NOT EXISTS (SELECT 1 FROM instances WHERE id = %(id)s)
), turn AS (
    INSERT INTO actors (id, type, key, active, created_at, updated_at)
    SELECT %(actor)s::text, %(type)s::text, %(key)s::text, new.id, %(now)s::double precision,
           %(now)s::double precision
    FROM new
    ON CONFLICT (id) DO UPDATE SET active = coalesce(actors.active, excluded.active)
    RETURNING id, type, key, state, state_version, revision, active, invocations, created_at, updated_at
), ins AS (
    INSERT INTO instances
        (id, name, status, input, created_at, updated_at, wake_at, owner, token, parent_id,
         parent_close, deadline, actor_id, shard)
    SELECT %(id)s, %(name)s,
           CASE WHEN turn.active = %(id)s THEN %(status)s::text ELSE 'queued' END,
           %(input)s::bytea, %(now)s, %(now)s,
           CASE WHEN turn.active = %(id)s THEN %(wake_at)s::double precision END,
           CASE WHEN turn.active = %(id)s THEN %(owner)s::text END,
           CASE WHEN turn.active = %(id)s THEN %(token)s::bigint ELSE 0 END,
           %(parent_id)s::text, %(parent_close)s::text, %(deadline)s::double precision, %(actor)s,
           %(shard)s::integer
    FROM turn
    ON CONFLICT (id) DO NOTHING
    RETURNING status
)
SELECT ins.status, turn.* FROM ins, turn;

-- name: actor_lock
-- The actor's row, locked before the next turn is chosen, in a statement of its own: the
-- statements after it see every call queued by a commit that held the lock before.
-- Its mailbox takes turns on it too: senders (one sequence per topic), and a call of it that
-- starts waiting for a message (its recheck then sees every message committed before).
SELECT 1 FROM actors WHERE id = %(actor)s FOR NO KEY UPDATE;

-- name: actor_save
UPDATE actors SET state = %(state)s, state_version = %(version)s, revision = revision + 1,
    updated_at = %(now)s
WHERE id = %(actor)s AND active = %(id)s;

-- name: invocation_state_size
UPDATE instances SET state_size = %(size)s WHERE id = %(id)s;

-- name: actor_next_turn
-- The call whose turn it was ended: the oldest queued one is next.
UPDATE actors
SET invocations = invocations + 1, updated_at = %(now)s,
    active = (SELECT i.id FROM instances AS i
              WHERE i.actor_id = %(actor)s AND i.status = 'queued' ORDER BY i.seq LIMIT 1)
WHERE id = %(actor)s AND active = %(id)s;

-- name: actor_wake
-- The next call, if any, is pending now: only then are the other executors told (the end of
-- a call that passes no turn makes nothing ready; the store sends no NOTIFY for it).
WITH woke AS (
    UPDATE instances SET status = 'pending', wake_at = %(now)s, updated_at = %(now)s
    WHERE id = (SELECT active FROM actors WHERE id = %(actor)s) AND status = 'queued'
    RETURNING id
)
SELECT pg_notify(current_setting('perdure.wake_channel'), '') FROM woke;

-- name: actor_direct_update
-- A call that ran directly on an idle actor (DirectCall) ends: recorded only if no call has
-- the turn and the state is still the one it ran on (the update locks the actor's row, so an
-- enqueue waits for it or went first).
UPDATE actors
SET state = coalesce(%(state)s, state), state_version = coalesce(%(version)s, state_version),
    revision = %(new_revision)s, invocations = invocations + 1, updated_at = %(now)s
WHERE id = %(actor)s AND active IS NULL AND revision = %(revision)s;

-- name: actor_direct_create
-- The first call of an actor ran directly (DirectCall): the actor with its state, unless
-- another call created it meanwhile.
INSERT INTO actors
    (id, type, key, state, state_version, revision, invocations, created_at, updated_at)
VALUES (%(actor)s, %(type)s, %(key)s, %(state)s, coalesce(%(version)s, 0), %(new_revision)s, 1,
        %(now)s, %(now)s)
ON CONFLICT (id) DO NOTHING;

-- name: actor_get
SELECT id, type, key, state, state_version, revision, active, invocations, created_at, updated_at,
       (SELECT count(*) FROM actor_messages AS m WHERE m.actor_id = actors.id AND m.consumed = 0)
FROM actors WHERE id = %s;

-- name: actor_get_many
-- Actors by id: one read for many calls.
-- Without the mailbox count (actor_row makes it 0): running calls do not need it.
SELECT id, type, key, state, state_version, revision, active, invocations, created_at, updated_at
FROM actors WHERE id = ANY(%s);

-- name: actor_list
-- By id (type, then key); the cursor is the last id seen.
SELECT id, type, key, state, state_version, revision, active, invocations, created_at, updated_at,
       (SELECT count(*) FROM actor_messages AS m WHERE m.actor_id = actors.id AND m.consumed = 0)
FROM actors
WHERE (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (%(prefix)s::text IS NULL OR left(key, length(%(prefix)s::text)) = %(prefix)s::text)
  AND (%(busy)s::boolean IS NULL OR (active IS NOT NULL) = %(busy)s::boolean)
  AND id COLLATE "C" > %(after)s
ORDER BY id COLLATE "C"
LIMIT %(limit)s;

-- name: actor_oplog
SELECT id, name, status, input, output, error, created_at, updated_at, state_size, seq
FROM instances
WHERE actor_id = %(actor)s AND seq > %(after)s
ORDER BY seq
LIMIT %(limit)s;

-- name: actor_delete
DELETE FROM actors WHERE id = %s AND active IS NULL;

-- name: actor_delete_invocations
DELETE FROM instances WHERE actor_id = %s;

-- name: liveness_hold
-- An executor's liveness lock, held by its listening session for as long as it runs: the
-- server releases it when the session ends (the process died, or its connection did).
SELECT pg_advisory_lock(hashtextextended('perdure-executor:' || %s, 0));

-- name: liveness_probe
-- Free if the executor's session is gone; taken (and given back at once) to find out.
SELECT pg_try_advisory_lock(hashtextextended('perdure-executor:' || %s, 0));

-- name: liveness_release
SELECT pg_advisory_unlock(hashtextextended('perdure-executor:' || %s, 0));

-- name: mailbox_open
-- A message to an actor that was never called: the actor exists from now on (idle, no state),
-- so that it is listed, shows its mailbox, and deleting it deletes the mailbox.
INSERT INTO actors (id, type, key, created_at, updated_at)
VALUES (%(actor)s, %(type)s, %(key)s, %(now)s, %(now)s)
ON CONFLICT DO NOTHING;

-- name: mailbox_insert
-- Sequence numbers per (actor, topic) follow commit order; a repeated sender key is ignored.
INSERT INTO actor_messages (actor_id, topic, seq, payload, sender_key, created_at)
VALUES (%(actor)s, %(topic)s,
        (SELECT coalesce(max(seq), 0) + 1 FROM actor_messages
         WHERE actor_id = %(actor)s AND topic = %(topic)s),
        %(payload)s, %(sender_key)s, %(now)s)
ON CONFLICT DO NOTHING;

-- name: mailbox_wake
-- The call whose turn it is, if it waits for a message on this topic, is due now.
UPDATE instances SET wake_at = %(now)s
WHERE id = (SELECT active FROM actors WHERE id = %(actor)s)
  AND status = 'waiting' AND waiting_topic = %(topic)s;

-- name: mailbox_next
SELECT seq, payload FROM actor_messages
WHERE actor_id = %s AND topic = %s AND consumed = 0
ORDER BY seq LIMIT 1;

-- name: mailbox_consume
UPDATE actor_messages SET consumed = 1, payload = ''::bytea WHERE actor_id = %s AND topic = %s AND seq = %s;
