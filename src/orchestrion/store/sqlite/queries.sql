-- SQLite's own SQL (`orchestrion.store.sqlite.queries.SQLITE`): what it says differently
-- from PostgreSQL, or needs and PostgreSQL does not. The portable statements are
-- store/sql/queries.sql, whose entries (and the state guards) fill braces here too.


-- ====================================================================== the connection

-- name: connection_setup
-- Run on every connection: WAL with synchronous=NORMAL survives any process crash;
-- foreign keys on; a busy timeout (writers queue on a file lock first); a 32 MB cache.
-- A new file gets 2 KiB pages (before WAL is set, which writes the header; an existing
-- file keeps its own): a commit writes each page it dirtied to the WAL and checksums it,
-- and a hop dirties about 12 pages, so 4 KiB pages cost a hop about 15% more
-- (bench/hop_floor.py --page-size); 1 KiB pages cost a hop less but made wide maps a third
-- slower (docs/performance.md, session 16). The WAL is copied into the file by the
-- store's checkpoint thread from 2,000 pages (sqlite/checkpoints.py: the commits wait only
-- for its last short copy). SQLite's own checkpoint, which the commit that crosses its
-- mark pays for (about 10 ms here), stays on at 4,000 pages, not its default 1,000, as
-- the backstop for a burst that outruns the thread. A process crash loses nothing either
-- way (synchronous=NORMAL); an OS crash may lose the transactions since the last
-- checkpoint that the OS had not yet written.
PRAGMA page_size = 2048;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
PRAGMA foreign_keys = ON;
PRAGMA busy_timeout = 30000;
PRAGMA cache_size = -32000;
PRAGMA wal_autocheckpoint = 4000

-- name: begin_immediate
-- A write transaction that takes the write lock at once (no upgrade that could fail).
BEGIN IMMEDIATE

-- name: create_schema_migrations
-- The table of applied migrations, made before the first migration.
CREATE TABLE IF NOT EXISTS schema_migrations
(version TEXT PRIMARY KEY, applied_at REAL NOT NULL)

-- name: record_migration
-- A migration applied now.
INSERT INTO schema_migrations VALUES (?, strftime('%s', 'now'))

-- name: any_schema
-- Whether the database holds anything at all (an empty one is made from schema.sql).
SELECT 1 FROM sqlite_master LIMIT 1

-- name: schema_migrations_table
-- Whether the database was ever migrated (read without migrating it).
SELECT name FROM sqlite_master WHERE name = 'schema_migrations'


-- ====================================================================== workflows

-- name: workflow_versions
-- Every version of a workflow, newest first (rowid orders versions registered at one
-- instant).
SELECT * FROM workflows WHERE name = ? ORDER BY created_at DESC, rowid DESC

-- name: insert_workflow
-- A new workflow version.
INSERT INTO workflows (name, version, spec, source, created_at) VALUES (?, ?, ?, ?, ?)

-- name: set_workflow_source
-- The source file a workflow version was registered from.
UPDATE workflows SET source = ? WHERE name = ? AND version = ?


-- ====================================================================== workers and logs

-- name: list_workers
-- Every worker, in order of start.
SELECT * FROM workers ORDER BY started_at

-- name: insert_logs
-- Log lines of attempts.
INSERT INTO logs (run_id, task_run_id, attempt, at, stream, line)
VALUES (?, ?, ?, ?, ?, ?)

-- name: in_queues
-- A task run's queue among the claimer's ({marks}: one per queue).
IN ({marks})


-- ====================================================================== finish (sqlite/finish.py)

-- name: running_rows
-- Which task runs of a batch of successes ({ids}) are running as tasks or mapped items.
SELECT {task_cols} FROM task_runs WHERE id IN ({ids}) AND state = {task_leased}
AND kind IN ('task', 'item')

-- name: succeed_one
-- `running_rows` and `succeed_running` in one statement, for a lone success: the moved
-- row, or none when it was not running under that epoch (states are parameters).
UPDATE task_runs SET state = ?, result = ?, error = NULL, finished_at = ?
WHERE id = ? AND state = ? AND lease_epoch = ? AND kind IN ('task', 'item')
RETURNING {task_cols}

-- name: succeed_running
-- The compare-and-set of a running task run to succeeded (the states are parameters),
-- fenced by the epoch of the attempt that succeeded.
UPDATE task_runs SET state = ?, result = ?, error = NULL, finished_at = ?
WHERE id = ? AND state = ? AND lease_epoch = ?


-- ====================================================================== leases

-- name: heartbeat
-- Extend a worker's leases, fenced by (owner, epoch): a stale epoch must not extend a
-- newer lease. {ids}: the task run ids; {pairs}: one (?, ?) per (id, epoch).
UPDATE task_runs SET lease_expires_at = ? WHERE lease_owner = ?
AND state = {task_leased} AND id IN ({ids})
AND (id, lease_epoch) IN (VALUES {pairs}) RETURNING id, lease_epoch

-- name: any_expired
-- Whether any lease has expired (looked at without the writer lock).
SELECT 1 FROM task_runs WHERE state = {task_leased} AND lease_expires_at < ? LIMIT 1

-- name: expired
-- Every task run whose lease has expired.
SELECT id FROM task_runs WHERE state = {task_leased} AND lease_expires_at < ?
