-- PostgreSQL's own SQL (`orchestrion.store.postgres.queries.PG`): what it says differently
-- from SQLite, its locks, and its fast paths (claims, finishes, heartbeats that handle a
-- batch of task runs in one statement, arrays passed with `unnest`). The portable
-- statements are store/sql/queries.sql, whose entries (and the state guards) fill braces
-- here too. Placeholders are `?`, translated to psycopg's `%s` (store/postgres/tx.py).


-- ====================================================================== transactions, locks

-- name: begin
-- Begin a transaction (queued in the pipeline: it travels with the first statement).
BEGIN

-- name: for_update
-- Appended to a read whose rows the transaction goes on to change: lock them.
FOR UPDATE

-- name: for_update_skip_locked
-- As `for_update`, passing over rows another transaction holds.
FOR UPDATE SKIP LOCKED

-- name: lock_admission
-- Serialise decisions about one workflow's max active runs (a transaction advisory lock
-- in the ADMISSION_LOCKS namespace, keyed by the workflow's name).
SELECT pg_advisory_xact_lock(?, hashtext(?))

-- name: expect_rows
-- Send a guarded UPDATE ({update}, without RETURNING) without waiting, and have the
-- server check that it moved exactly the rows it must (`orchestrion_expect_rows`,
-- migration 0010): otherwise the transaction fails and its COMMIT rolls back.
WITH moved AS ({update} RETURNING 1)
SELECT orchestrion_expect_rows((SELECT count(*) FROM moved), ?, ?)

-- name: pg_task_cols
-- `task_cols`, and the lease expiry (the reaper checks it under the lock).
{task_cols}, lease_expires_at

-- name: task_row
-- One task run, locked, after a share lock on its run (the store's lock order: run
-- first); no row when it is missing.
WITH r AS MATERIALIZED (SELECT id AS locked_run FROM runs WHERE id =
(SELECT run_id FROM task_runs WHERE id = ?) FOR KEY SHARE)
SELECT {pg_task_cols} FROM task_runs, r WHERE id = ? AND run_id = r.locked_run
FOR UPDATE OF task_runs

-- name: notify
-- Notifications to send at commit: one per channel, the payload the sending store's token.
SELECT pg_notify(c, ?) FROM unnest(?::text[]) AS c

-- name: insert_events_and_notify
-- The event rows a transaction buffered (one array per column) and its notifications, in
-- one statement queued with the COMMIT.
WITH written AS (INSERT INTO events (run_id, task_run_id, at, kind, from_state,
to_state, data) SELECT * FROM unnest(?::text[], ?::bigint[], ?::float8[],
?::text[], ?::text[], ?::text[], ?::text[])) {notify}


-- ====================================================================== migrations

-- name: migration_lock
-- Held while migrating, by any process on any schema.
SELECT pg_advisory_xact_lock(?)

-- name: create_schema_migrations
-- The table of applied migrations, made before the first migration.
CREATE TABLE IF NOT EXISTS schema_migrations
(version TEXT PRIMARY KEY, applied_at DOUBLE PRECISION NOT NULL)

-- name: record_migration
-- A migration applied now.
INSERT INTO schema_migrations VALUES (?, extract(epoch FROM now()))

-- name: schema_migrations_table
-- Whether the schema was ever migrated (read without migrating it): NULL if not.
SELECT to_regclass('schema_migrations')


-- ====================================================================== wake-ups

-- name: listen
-- Listen on one notification channel ({channel}: a name of ours, not user input).
LISTEN {channel}

-- name: event_horizon
-- The event ids above a floor (the cursor or what this feed settled, and never below the
-- newest id minus a window), to find the first gap (store/postgres/feed.py).
WITH f AS (SELECT greatest(?::bigint, (SELECT coalesce(max(id), 0) FROM events)
- ?) AS floor) SELECT f.floor, e.id FROM f LEFT JOIN events e ON e.id > f.floor
ORDER BY e.id

-- name: lock_events
-- Wait for every transaction that wrote event rows to end, and hold new writers back
-- until this transaction ends (event ids are drawn at insert, not at commit).
LOCK TABLE events IN SHARE MODE

-- name: events_upto
-- The history after an event id and up to the feed's horizon, oldest first.
SELECT * FROM events WHERE id > ? AND id <= ? ORDER BY id LIMIT ?

-- name: run_events_upto
-- One run's history after an event id and up to the feed's horizon, oldest first.
SELECT * FROM events WHERE run_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?


-- ====================================================================== workflows, workers, logs

-- name: workflow_versions
-- Every version of a workflow, newest first (seq orders versions registered at one
-- instant).
SELECT * FROM workflows WHERE name = ? ORDER BY created_at DESC, seq DESC

-- name: insert_workflow
-- A new workflow version; nothing when a concurrent transaction registered it first.
INSERT INTO workflows (name, version, spec, source, created_at)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, version) DO NOTHING RETURNING name

-- name: set_workflow_source
-- The source file a workflow version was registered from, when it changed.
UPDATE workflows SET source = ? WHERE name = ? AND version = ?
AND source IS DISTINCT FROM ?

-- name: list_workers
-- Every worker, in order of start.
SELECT * FROM workers ORDER BY started_at, id

-- name: insert_logs
-- Log lines of attempts, one array per column.
INSERT INTO logs (run_id, task_run_id, attempt, at, stream, line)
SELECT * FROM unnest(?::text[], ?::bigint[], ?::int[], ?::float8[],
?::text[], ?::text[])

-- name: in_queues
-- A task run's queue among the claimer's (one array parameter).
= ANY(?)

-- name: in_one_queue
-- A task run's queue is the claimer's one queue: the claim index is read in claim order
-- and the scan stops after the limit (`= ANY` would read every ready row and sort them).
= ?


-- ====================================================================== claims (claim.py)

-- name: claim_run_json
-- Each claim candidate's run row (as `run_row` reads it), so that building the claims
-- need not read it again.
(SELECT row_to_json(r) FROM (SELECT {run_cols} FROM runs
WHERE runs.id = task_runs.run_id) r) AS run

-- name: claim_candidates
-- Ready task runs of the claimer's queues ({queue_match}) that its labels allow
-- ({routed}), best first, locked; rows another claimer holds are passed over. A full
-- limit is passed over here approximately: the count of `slots.within_limits` decides.
SELECT {claim_cols}, {claim_run_json} FROM task_runs WHERE state IN {task_claimable}
AND queue {queue_match} AND ready_at <= ? {routed} {conc_filter} {slot_filter}
ORDER BY priority DESC, ready_at, id LIMIT ? FOR UPDATE SKIP LOCKED

-- name: lock_limits
-- The transaction advisory locks of the limited names among a claim's candidates, in
-- order (so that claimers cannot deadlock), before their running task runs are counted.
SELECT count(pg_advisory_xact_lock(?, hashtext(k))) FROM unnest(?::text[]) AS k

-- name: claim_locked
-- Lease the chosen task runs (locked by this transaction) to the claimer; sent through
-- `expect_rows`.
UPDATE task_runs SET state = ?, lease_owner = ?, lease_epoch = lease_epoch + 1,
lease_expires_at = ?, attempts = attempts + 1,
started_at = CASE WHEN attempts = 0 THEN ? ELSE started_at END
WHERE id = ANY(?) AND state IN {task_claimable}

-- name: insert_attempts
-- The attempts a claim begins, one array per column.
INSERT INTO attempts (task_run_id, run_id, number, epoch, worker, started_at)
SELECT * FROM unnest(?::bigint[], ?::text[], ?::int[], ?::int[], ?::text[],
?::float8[])

-- name: upstream_results
-- The results of the upstream tasks of claimed task runs, by (run id, task name) pairs.
SELECT run_id, task_name, result FROM task_runs WHERE map_index = -1
AND kind IN ('task', 'group') AND (run_id, task_name) IN
(SELECT * FROM unnest(?::text[], ?::text[]))


-- ====================================================================== finishes (finish.py)

-- name: task_facts
-- What never changes about some task runs (their run, workflow version, task, kind).
SELECT t.id, t.run_id, r.workflow, r.version, t.task_name, t.kind FROM task_runs t
JOIN runs r ON r.id = t.run_id WHERE t.id = ANY(?)

-- name: counted_cols
-- `task_cols`, of the counted rows (alias c).
c.id, c.run_id, c.task_name, c.map_index, c.group_id, c.kind, c.state, c.waiting,
c.up_ok, c.up_failed, c.up_skipped, c.attempts, c.failures, c.lost, c.lease_epoch,
c.item, c.priority, c.queue

-- name: succeed_moves
-- The common part of a batch of successes: lock the runs, then move the task runs
-- (compare-and-set on state and epoch: the attempt must still hold its lease), then
-- close their attempts. The run rows are locked before any task run by an InitPlan.
WITH u AS (SELECT * FROM unnest(?::bigint[], ?::bigint[], ?::text[]) AS u(id, epoch,
result)),
locked AS MATERIALIZED (SELECT id FROM runs WHERE id = ANY(?::text[]) ORDER BY id
FOR KEY SHARE),
moved AS MATERIALIZED (UPDATE task_runs t SET state = ?, result = u.result,
error = NULL, finished_at = ? FROM u WHERE t.id = u.id AND t.state = ?
AND t.lease_epoch = u.epoch AND t.run_id = ANY(ARRAY(SELECT id FROM locked))
RETURNING t.id, t.run_id, t.kind, t.group_id, t.lease_epoch),
closed AS (UPDATE attempts a SET finished_at = ?, outcome = 'succeeded', error = NULL,
error_type = NULL, traceback = NULL FROM moved m WHERE a.task_run_id = m.id
AND a.epoch = m.lease_epoch AND a.outcome IS NULL)

-- name: succeed_batch
-- `succeed_moves`, then count the moved task runs into their groups and downstream rows
-- (one update per row, however many of its upstreams or items the batch holds) and
-- their runs; returns the moved ids, the counted rows and the runs, for the decisions.
{succeed_moves},
counts AS (SELECT m.group_id AS target, 'item' AS via, count(*) AS n FROM moved m
WHERE m.kind = 'item' GROUP BY m.group_id
UNION ALL SELECT d.id, 'edge', count(*) FROM moved m
JOIN unnest(?::bigint[], ?::text[]) AS e(src, name) ON e.src = m.id
JOIN task_runs d ON d.run_id = m.run_id AND d.map_index = -1
AND d.kind IN ('task', 'group') AND d.task_name = e.name GROUP BY d.id),
counted AS (UPDATE task_runs c SET waiting = c.waiting - k.n, up_ok = c.up_ok + k.n
FROM counts k WHERE c.id = k.target RETURNING k.via, {counted_cols}),
lefts AS (UPDATE runs r SET unfinished = r.unfinished - k.n FROM (SELECT run_id,
count(*) AS n FROM moved GROUP BY run_id) k WHERE r.id = k.run_id RETURNING r.id,
r.workflow, r.version, r.state, r.params, r.parent_task_run_id, r.unfinished,
r.compensated, r.priority)
SELECT (SELECT json_agg(id) FROM moved) AS moved,
(SELECT json_agg(counted) FROM counted) AS counted,
(SELECT json_agg(lefts) FROM lefts) AS runs

-- name: succeed_items
-- `succeed_moves` alone, for mapped items whose counting is queued (`count_items`).
{succeed_moves} SELECT id, run_id, group_id FROM moved

-- name: count_items
-- Count finished items into their groups and runs, sent with the COMMIT without waiting,
-- so the counter rows every finisher of a fan-out updates stay locked only while the
-- COMMIT is written. Should a group's last item be among them, a decision is due that this
-- statement cannot take: `orchestrion_expect_zero` (migration 0006) fails it, the whole
-- transaction rolls back and the store runs the finish again the full way.
WITH counted AS (UPDATE task_runs c SET waiting = c.waiting - k.n, up_ok = c.up_ok + k.n
FROM unnest(?::bigint[], ?::int[]) AS k(target, n) WHERE c.id = k.target
RETURNING c.waiting),
lefts AS (UPDATE runs r SET unfinished = r.unfinished - k.n
FROM unnest(?::text[], ?::int[]) AS k(run_id, n) WHERE r.id = k.run_id RETURNING 1)
SELECT orchestrion_expect_zero((SELECT count(*) FROM counted WHERE waiting <= 0))


-- ====================================================================== heartbeats, reaping (runs.py)

-- name: heartbeat
-- Extend a worker's leases, fenced by (owner, epoch), one array each of ids and epochs;
-- one statement, so autocommit makes it atomic.
UPDATE task_runs t SET lease_expires_at = ? FROM unnest(?::bigint[], ?::bigint[])
AS l(id, epoch) WHERE t.id = l.id AND t.lease_epoch = l.epoch
AND t.lease_owner = ? AND t.state = {task_leased} RETURNING t.id, t.lease_epoch

-- name: expired
-- Every task run whose lease has expired, in id order.
SELECT id FROM task_runs WHERE state = {task_leased} AND lease_expires_at < ? ORDER BY id


-- ====================================================================== metrics (0015)

-- name: metric_fold
-- Fold a batch of deltas into the durable totals. Identities may commit out of order, so
-- the batch is the rows this statement deletes (skipping rows another fold holds), never
-- an id range.
WITH gone AS (DELETE FROM metric_deltas WHERE id IN (
SELECT id FROM metric_deltas ORDER BY id LIMIT ? FOR UPDATE SKIP LOCKED)
RETURNING family, workflow, outcome, seconds)
INSERT INTO metric_totals (family, workflow, outcome, bucket, n, seconds)
SELECT family, workflow, outcome, {bucket}, count(*), sum(seconds) FROM gone
GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
ON CONFLICT (family, workflow, outcome, bucket) DO UPDATE SET
n = metric_totals.n + excluded.n, seconds = metric_totals.seconds + excluded.seconds

