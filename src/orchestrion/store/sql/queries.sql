-- The store's portable SQL: every statement both dialects send as written, by name
-- (`orchestrion.store.sql.queries.Q`). What differs between them is in
-- store/sqlite/queries.sql and store/postgres/queries.sql.
--
-- Placeholders are `?` (the PostgreSQL transaction translates them). In braces:
--   {task_claimable}, {run_active}, ...  state guards, rendered from orchestrion.states
--                                        (store/sql/guards.py), never spelled by hand;
--   {task_cols}, {slot_filter}, ...      fragments: other entries of this file;
--   {secret_meta_columns}, ...           the fields of a record (store/sql/rows.py);
--   any other {hole}                     filled at run time by the one function that
--                                        composes the statement (an IN list of variable
--                                        length, optional conditions, a SET list).
-- Entries are grouped as the code that sends them.


-- ====================================================================== fragments

-- name: task_cols
-- The columns of a task run that a transaction's decisions read (`Guarded.task_row`).
id, run_id, task_name, map_index, group_id, kind, state, waiting, up_ok, up_failed,
up_skipped, attempts, failures, lost, lease_epoch, item, priority, queue

-- name: run_cols
-- The columns of a run that a transaction's decisions read (`Guarded.run_row`).
id, workflow, version, state, params, parent_task_run_id, unfinished, compensated, priority

-- name: slot_cols
-- A claim candidate's key slot and its queue's limit (NULL: unlimited), read with the
-- candidates so that a claim without limits costs no extra statement (`slots.py`).
slot_key, slot_limit,
(SELECT max_running FROM queue_limits ql WHERE ql.queue = task_runs.queue) AS queue_limit

-- name: claim_cols
-- What a claim reads of each candidate task run: its decision columns and its limits.
{task_cols}, conc_key, conc_limit, {slot_cols}

-- name: conc_filter
-- AND-ed to a claim's candidates: a task whose concurrency limit is full is passed over
-- here, not after the LIMIT, so that many of them cannot starve other ready work.
AND (conc_key IS NULL OR conc_limit > (SELECT count(*) FROM task_runs r
WHERE r.state = {task_leased} AND r.conc_key = task_runs.conc_key))

-- name: slot_filter
-- AND-ed to a claim's candidates (parameters: now, now): rows whose key or queue is full
-- are passed over here, so they cannot starve other ready work; the count in
-- `slots.within_limits` decides. The queue part is one subquery for the whole statement.
AND (slot_key IS NULL OR slot_limit > (SELECT count(*) FROM task_runs r
WHERE r.state = {task_leased} AND r.slot_key = task_runs.slot_key
AND r.lease_expires_at > ?))
AND queue NOT IN (SELECT ql.queue FROM queue_limits ql WHERE ql.max_running <=
(SELECT count(*) FROM task_runs r WHERE r.state = {task_leased} AND r.queue = ql.queue
AND r.lease_expires_at > ?))


-- ====================================================================== guarded.py

-- name: insert_events
-- The event rows a transaction buffered, written before its COMMIT.
INSERT INTO events (run_id, task_run_id, at, kind, from_state, to_state, data)
VALUES (?, ?, ?, ?, ?, ?, ?)

-- name: move_task_run
-- The compare-and-set of a task run to a new state: {sets} are the other columns the move
-- writes; the guard is the state the row was read in (legal by the transition table).
UPDATE task_runs SET state = ?{sets} WHERE id = ? AND state = ?

-- name: move_run
-- The compare-and-set of a run, as `move_task_run`.
UPDATE runs SET state = ?{sets} WHERE id = ? AND state = ?

-- name: task_row
-- One task run, by id, as a decision reads it.
SELECT {task_cols} FROM task_runs WHERE id = ?

-- name: run_row
-- One run, by id, as a decision reads it (locked where the dialect locks).
SELECT {run_cols} FROM runs WHERE id = ?

-- name: results_of
-- The results of some top-level task runs of one run ({names}: their task names).
SELECT task_name, result FROM task_runs WHERE run_id = ? AND map_index = -1
AND kind IN ('task', 'group') AND task_name IN ({names})


-- ====================================================================== advance.py

-- name: insert_items
-- The items of a mapped task: one task run per element, ready at once.
INSERT INTO task_runs (run_id, task_name, map_index, group_id, kind, state, queue,
priority, ready_at, conc_key, conc_limit, requires, item, slot_key, slot_limit)
VALUES (?, ?, ?, ?, 'item', {task_ready}, ?, ?, ?, ?, ?, ?, ?, ?, ?)

-- name: add_unfinished
-- More task runs to finish before the run completes (mapped items, undo steps).
UPDATE runs SET unfinished = unfinished + ? WHERE id = ?

-- name: count_finished
-- Task runs of the run finished (how many): the run completes when this reaches zero.
UPDATE runs SET unfinished = unfinished - ? WHERE id = ? RETURNING unfinished

-- name: count_downstream
-- Count finished upstream task runs (how many) into their downstream task runs
-- ({names}), by outcome bucket (ok, failed, skipped); returns them, for the ones now due
-- a decision.
UPDATE task_runs SET waiting = waiting - ?, up_ok = up_ok + ?,
up_failed = up_failed + ?, up_skipped = up_skipped + ?
WHERE run_id = ? AND map_index = -1 AND kind IN ('task', 'group')
AND task_name IN ({names}) RETURNING {task_cols}

-- name: count_item
-- Count finished items (how many) into their mapped task's group row; returns the group.
UPDATE task_runs SET waiting = waiting - ?, up_ok = up_ok + ?,
up_failed = up_failed + ?, up_skipped = up_skipped + ? WHERE id = ?
RETURNING {task_cols}

-- name: group_items
-- The outcomes of a mapped task's items, in item order (the group's result is their list).
SELECT state, result, error FROM task_runs WHERE group_id = ? ORDER BY map_index

-- name: undone_task
-- The task run that an undo step undoes.
SELECT {task_cols} FROM task_runs WHERE run_id = ? AND task_name = ?
AND map_index = -1 AND kind IN ('task', 'group')

-- name: undo_step
-- An undo step of a run by its position in the compensation order.
SELECT {task_cols} FROM task_runs WHERE run_id = ? AND kind = 'undo' AND map_index = ?

-- name: next_undo_step
-- The next undo step of a run still to run after the one at this position: the next in
-- order at first, the next failed one when a compensation is retried.
SELECT {task_cols} FROM task_runs WHERE run_id = ? AND kind = 'undo' AND map_index > ?
AND state IN {task_undecided} ORDER BY map_index LIMIT 1

-- name: undo_steps_to_retry
-- A compensated run's undo steps that failed or were canceled, in compensation order.
SELECT {task_cols} FROM task_runs WHERE run_id = ? AND kind = 'undo'
AND state IN {task_resettable} ORDER BY map_index

-- name: run_outcomes
-- The top-level task runs of a run, for its outcome and result.
SELECT task_name, state, result, error FROM task_runs WHERE run_id = ?
AND kind IN ('task', 'group') AND map_index = -1 ORDER BY id

-- name: finished_run
-- A run that just finished, for what waits on it (a parent task, a queued run).
SELECT id, workflow, version, state, result, error, parent_task_run_id FROM runs WHERE id = ?

-- name: next_queued_run
-- The oldest (by priority) run of a workflow waiting for a slot.
SELECT id, state, version FROM runs WHERE workflow = ? AND state IN {run_startable}
ORDER BY priority DESC, id LIMIT 1

-- name: active_runs
-- How many runs of a workflow hold a slot under its max active runs.
SELECT count(*) AS n FROM runs WHERE workflow = ? AND state IN {run_active}

-- name: run_roots
-- The task runs of a starting run that wait on no upstream: decided at once.
SELECT {task_cols} FROM task_runs WHERE run_id = ? AND state IN {task_undecided}
AND waiting = 0 AND kind IN ('task', 'group', 'item')

-- name: insert_undo_steps
-- A run's compensation: one undo step per task to undo, each waiting on the one before.
INSERT INTO task_runs (run_id, task_name, map_index, kind, state, queue, priority,
ready_at, waiting, requires) VALUES (?, ?, ?, 'undo', {task_new}, ?, ?, ?, ?, ?)


-- ====================================================================== lifecycle.py

-- name: run_by_idempotency_key
-- The run that an idempotency key started, if any.
SELECT id FROM runs WHERE idempotency_key = ?

-- name: insert_run
-- A new run; nothing when a concurrent transaction took its idempotency key first.
INSERT INTO runs (id, workflow, version, state, params, priority, trigger,
idempotency_key, parent_task_run_id, unfinished, created_at, started_at, deadline)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (idempotency_key) DO NOTHING RETURNING id

-- name: insert_task_runs
-- A new run's task runs, one per task, undecided until their upstreams finish.
INSERT INTO task_runs (run_id, task_name, kind, state, queue, priority, waiting,
conc_key, conc_limit, requires) VALUES (?, ?, ?, {task_new}, ?, ?, ?, ?, ?, ?)

-- name: close_attempt
-- An attempt's outcome, once (an attempt already closed keeps its first).
UPDATE attempts SET finished_at = ?, outcome = ?, error = ?, error_type = ?,
traceback = ? WHERE task_run_id = ? AND epoch = ? AND outcome IS NULL

-- name: cancelable_task_runs
-- The task runs of a run that a cancel stops.
SELECT id, run_id, state FROM task_runs WHERE run_id = ? AND state IN {task_cancelable}
ORDER BY id

-- name: cancel_attempts
-- Close a canceled run's attempts in flight.
UPDATE attempts SET finished_at = ?, outcome = 'canceled' WHERE run_id = ?
AND outcome IS NULL

-- name: child_runs
-- The runs that a run's sub-workflow tasks started.
SELECT r.id FROM runs r JOIN task_runs t ON r.parent_task_run_id = t.id WHERE t.run_id = ?

-- name: clear_unfinished
-- A canceled run has nothing left to finish.
UPDATE runs SET unfinished = 0 WHERE id = ?

-- name: retry_task_runs
-- Every task run of a run being retried, to re-open what failed.
SELECT id, run_id, task_name, kind, state, map_index, group_id, attempts FROM task_runs
WHERE run_id = ? ORDER BY id

-- name: has_items
-- Whether a mapped task's group row has items (it was expanded).
SELECT 1 FROM task_runs WHERE group_id = ? LIMIT 1

-- name: recount_task_runs
-- Every task run of a run, to recompute its counters after a retry re-opened some.
SELECT id, task_name, kind, state, group_id FROM task_runs WHERE run_id = ?

-- name: recount_upstream
-- A task's recomputed upstream counters (only while it is undecided).
UPDATE task_runs SET waiting = ?, up_ok = ?, up_failed = ?, up_skipped = ?
WHERE run_id = ? AND task_name = ? AND map_index = -1 AND state IN {task_undecided}

-- name: recount_group
-- A mapped task's recomputed item counters.
UPDATE task_runs SET waiting = ?, up_ok = ?, up_failed = ?, up_skipped = ? WHERE id = ?

-- name: set_unfinished
-- A run's recomputed count of unfinished task runs.
UPDATE runs SET unfinished = ? WHERE id = ?


-- ====================================================================== marking.py

-- name: marked_task
-- The top-level task run a user marks succeeded or failed.
SELECT id, run_id, task_name, kind, state, map_index, group_id, lease_epoch
FROM task_runs WHERE run_id = ? AND task_name = ? AND map_index = -1
AND kind IN ('task', 'group')

-- name: supersede_by_user
-- The attempt in flight of a task whose outcome a user set: its late result is superseded.
UPDATE attempts SET finished_at = ?, outcome = 'superseded',
error = 'outcome set by a user' WHERE task_run_id = ? AND epoch = ?
AND outcome IS NULL

-- name: top_task_runs
-- A run's top-level task runs, to re-open those below a task marked succeeded.
SELECT id, run_id, task_name, kind, state FROM task_runs WHERE run_id = ?
AND map_index = -1 AND kind IN ('task', 'group')

-- name: run_unfinished
-- How many task runs of a run are unfinished.
SELECT unfinished FROM runs WHERE id = ?


-- ====================================================================== rerun.py

-- name: earlier_results
-- The top-level task runs of the run a rerun starts from, with their results.
SELECT task_name, state, result FROM task_runs WHERE run_id = ? AND map_index = -1
AND kind IN ('task', 'group')

-- name: carried_task
-- A task run of the new run whose earlier result the rerun carries over.
SELECT id, run_id, state, kind, task_name, group_id, map_index FROM task_runs
WHERE run_id = ? AND task_name = ? AND map_index = -1


-- ====================================================================== claim.py

-- name: claim_candidates
-- Ready task runs of the claimer's queues ({queues}) that its labels allow ({routed}),
-- best first; a few times more than wanted, for `slots.within_limits` to choose from.
SELECT {claim_cols} FROM task_runs WHERE state IN {task_claimable}
AND queue IN ({queues}) AND ready_at <= ? {routed} {conc_filter} {slot_filter}
ORDER BY priority DESC, ready_at, id LIMIT ?

-- name: claim_chosen
-- Lease a claim's chosen task runs ({ids}) to the claimer in one statement; the guard is
-- the states a claim moves from (the caller checks that every row moved).
UPDATE task_runs SET state = {task_leased}, lease_owner = ?, lease_epoch = lease_epoch + 1,
lease_expires_at = ?, attempts = attempts + 1,
started_at = CASE WHEN attempts = 0 THEN ? ELSE started_at END
WHERE id IN ({ids}) AND state IN {task_claimable}

-- name: insert_attempts
-- The attempts a claim begins, one per claimed task run.
INSERT INTO attempts (task_run_id, run_id, number, epoch, worker, started_at)
VALUES (?, ?, ?, ?, ?, ?)


-- ====================================================================== slots.py

-- name: running_per_conc_key
-- Running task runs per task concurrency key ({names}), as `running_per_*` rows.
SELECT 'conc' AS kind, conc_key AS name, count(*) AS n FROM task_runs
WHERE state = {task_leased} AND conc_key IN ({names}) GROUP BY conc_key

-- name: running_per_queue
-- Task runs holding an unexpired lease per limited queue ({names}).
SELECT 'queue' AS kind, queue AS name, count(*) AS n FROM task_runs
WHERE state = {task_leased} AND queue IN ({names}) AND lease_expires_at > ? GROUP BY queue

-- name: running_per_slot_key
-- Task runs holding an unexpired lease per rendered concurrency key ({names}).
SELECT 'key' AS kind, slot_key AS name, count(*) AS n FROM task_runs
WHERE state = {task_leased} AND slot_key IN ({names}) AND lease_expires_at > ?
GROUP BY slot_key


-- ====================================================================== routing.py

-- name: route_unlabelled
-- AND-ed to a claim by a worker without labels: only tasks that require nothing.
AND requires IS NULL

-- name: route_labelled
-- AND-ed to a claim by a labelled worker: tasks whose requirement is a subset of its
-- labels ({keys}: the canonical text of every non-empty subset).
AND (requires IS NULL OR requires IN ({keys}))


-- ====================================================================== runs.py

-- name: due_runs
-- Unfinished runs past their deadline (the run timeout).
SELECT id FROM runs WHERE deadline IS NOT NULL AND deadline <= ?
AND state IN {run_cancelable}

-- name: wait_attempt
-- The attempt of a sub-workflow task whose child run started: it now waits.
UPDATE attempts SET finished_at = ?, outcome = 'waiting' WHERE task_run_id = ?
AND epoch = ?

-- name: next_ready_at
-- When the next task run of these queues ({queue_match}: the dialect's `in_queues`)
-- becomes claimable; held back by a full concurrency limit, it is not a reason to wake.
SELECT min(ready_at) AS t FROM task_runs WHERE state IN {task_claimable}
AND queue {queue_match} {routed} {conc_filter} {slot_filter}

-- name: age_priorities
-- Raise the priority of long-waiting ready task runs, once per `every` seconds since they
-- became claimable (`aged` counts the raises), capped at 1000. Not a state: no event row.
UPDATE task_runs SET aged = aged + 1, priority = CASE WHEN priority + ?
> 1000 THEN 1000 ELSE priority + ? END
WHERE state IN {task_claimable} AND aged < ?
AND ready_at <= ? - (aged + 1) * ?

-- name: register_worker
-- A worker's row (a restart with the same id refreshes its heartbeat and state).
INSERT INTO workers (id, host, pid, queues, started_at, heartbeat_at, state, labels, slots)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET
heartbeat_at = excluded.heartbeat_at, state = excluded.state, slots = excluded.slots

-- name: worker_heartbeat
-- A worker's heartbeat and state.
UPDATE workers SET heartbeat_at = ?, state = ? WHERE id = ?

-- name: expire_leases_of
-- Expire every lease of a worker known dead, for the reaper to take.
UPDATE task_runs SET lease_expires_at = ? WHERE lease_owner = ?
AND state = {task_leased}

-- name: mark_worker_dead
-- A worker known dead.
UPDATE workers SET state = 'dead' WHERE id = ?

-- name: set_queue_limit
-- An operator's limit on a queue's running task runs (set or changed).
INSERT INTO queue_limits (queue, max_running, updated_at) VALUES (?, ?, ?)
ON CONFLICT (queue) DO UPDATE SET max_running = excluded.max_running,
updated_at = excluded.updated_at

-- name: clear_queue_limit
-- Remove a queue's limit; returns the queue when it had one.
DELETE FROM queue_limits WHERE queue = ? RETURNING queue


-- ====================================================================== reads.py

-- name: run
-- One run, by its whole id.
SELECT * FROM runs WHERE id = ?

-- name: runs_by_prefix
-- Runs whose id starts with a prefix (ids sort by code point: a prefix is a range); two
-- are enough to tell a unique prefix from an ambiguous one.
SELECT * FROM runs WHERE id >= ? AND id < ? LIMIT 2

-- name: runs_page
-- A page of runs, newest first; {where}: the filter's `runs_where_*` conditions.
SELECT * FROM runs {where} ORDER BY id DESC LIMIT ?

-- name: runs_where_workflow
-- Filter: runs of one workflow.
workflow = ?

-- name: runs_where_state
-- Filter: runs in one state.
state = ?

-- name: runs_where_before
-- Filter: runs created before another (a page's cursor).
id < ?

-- name: runs_where_workflows
-- Filter: runs of some workflows ({names}).
workflow IN ({names})

-- name: nothing
-- A condition that no row meets (a filter on an empty set of workflows).
1 = 0

-- name: task_runs_of_run
-- Every task run of a run, in creation order.
SELECT * FROM task_runs WHERE run_id = ? ORDER BY id

-- name: attempts_of_run
-- Every attempt of a run, in order.
SELECT * FROM attempts WHERE run_id = ? ORDER BY id

-- name: events_after
-- The history after an event id, oldest first.
SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?

-- name: run_events_after
-- One run's history after an event id, oldest first.
SELECT * FROM events WHERE run_id = ? AND id > ? ORDER BY id LIMIT ?

-- name: last_event_id
-- The newest event id (NULL without events).
SELECT max(id) AS m FROM events

-- name: logs_page
-- A run's log lines after a log id, oldest first, with their task's name and map index;
-- {of_task} is empty or `logs_of_task`.
SELECT l.*, t.task_name, t.map_index FROM logs l JOIN task_runs t
ON t.id = l.task_run_id WHERE l.run_id = ? AND l.id > ? {of_task} ORDER BY l.id LIMIT ?

-- name: logs_of_task
-- AND-ed to `logs_page`: the lines of one task.
AND t.task_name = ?

-- name: running_task_runs
-- Task runs under a lease, to show them by worker.
SELECT * FROM task_runs WHERE state = {task_leased} AND lease_owner IS NOT NULL ORDER BY id

-- name: queue_limits
-- The queue limits and how many task runs of each queue hold an unexpired lease.
SELECT ql.queue, ql.max_running, ql.updated_at, (SELECT count(*) FROM task_runs r
WHERE r.state = {task_leased} AND r.queue = ql.queue AND r.lease_expires_at > ?)
AS running FROM queue_limits ql ORDER BY ql.queue

-- name: last_runs_of_workflow
-- A workflow's last {per} runs, as marks: one LIMITed index range on runs_workflow_state
-- per workflow, UNION ALL-ed (a window over all runs grows with the history).
SELECT * FROM (SELECT {run_mark_columns} FROM runs WHERE workflow = ?
ORDER BY id DESC LIMIT {per}) AS w

-- name: run_state_counts
-- Runs created since an id (a time floor) per state; {of_workflows} is empty or
-- `run_state_counts_of`.
SELECT state, count(*) AS n FROM runs WHERE id >= ? {of_workflows} GROUP BY state

-- name: run_state_counts_of
-- AND-ed to `run_state_counts`: only runs of some workflows ({names}).
AND workflow IN ({names})

-- name: task_items
-- The elements of a mapped task's first items, in order.
SELECT map_index, item FROM task_runs WHERE run_id = ? AND task_name = ?
AND kind = 'item' ORDER BY map_index LIMIT ?

-- name: task_results
-- The results of some top-level task runs of a run ({names}: their task names).
SELECT task_name, state, result FROM task_runs WHERE run_id = ? AND map_index = -1
AND kind IN ('task', 'group') AND task_name IN ({names})

-- name: events_page
-- A page of the history, newest first; {where}: the search's `events_where_*` conditions.
SELECT * FROM events {where} ORDER BY id DESC LIMIT ?

-- name: events_where_kind
-- Search: events whose kind starts with a prefix ("run." matches every run event).
substr(kind, 1, ?) = ?

-- name: events_where_run
-- Search: one run's events.
run_id = ?

-- name: events_where_workflow
-- Search: the events of one workflow's runs.
run_id IN (SELECT id FROM runs WHERE workflow = ?)

-- name: events_where_before
-- Search: events before another (a page's cursor).
id < ?

-- name: task_runs_named
-- The task runs of one task of a run (a mapped task's group and items), in order.
SELECT * FROM task_runs WHERE run_id = ? AND task_name = ? ORDER BY map_index, id

-- name: attempts_of_task_runs
-- Every attempt of some task runs ({ids}), in order.
SELECT * FROM attempts WHERE task_run_id IN ({ids}) ORDER BY id


-- ====================================================================== workflows.py, database.py

-- name: workflow_version
-- One version of a workflow.
SELECT * FROM workflows WHERE name = ? AND version = ?

-- name: workflow_spec
-- The spec of one version of a workflow (parsed once: a version never changes).
SELECT spec FROM workflows WHERE name = ? AND version = ?

-- name: current_workflow
-- A workflow's current version.
SELECT w.* FROM workflow_current c
JOIN workflows w ON w.name = c.name AND w.version = c.version WHERE c.name = ?

-- name: current_workflows
-- The current version of each workflow, by name.
SELECT w.* FROM workflow_current c
JOIN workflows w ON w.name = c.name AND w.version = c.version ORDER BY c.name

-- name: current_versions
-- The current version of each workflow and when it became current, by name.
SELECT name, version, updated_at FROM workflow_current ORDER BY name

-- name: workflow_known
-- Whether a workflow version is registered.
SELECT 1 FROM workflows WHERE name = ? AND version = ?

-- name: lock_current
-- A workflow's current version, its row locked until the transaction ends (PostgreSQL: a
-- concurrent change of the current version waits, so the event's "from" is the truth).
UPDATE workflow_current SET updated_at = updated_at WHERE name = ? RETURNING version

-- name: insert_code_blob
-- One file of a version's code, kept once by its content hash.
INSERT INTO code_blobs (digest, content, size) VALUES (?, ?, ?) ON CONFLICT (digest) DO NOTHING

-- name: insert_code_bundle
-- A version's code: its files by path (blob digests) and import folders; kept once.
INSERT INTO code_bundles (digest, paths, files, created_at) VALUES (?, ?, ?, ?)
ON CONFLICT (digest) DO NOTHING

-- name: code_bundle
-- A version's code manifest.
SELECT paths, files FROM code_bundles WHERE digest = ?

-- name: code_blobs
-- The content of a version's files.
SELECT digest, content FROM code_blobs WHERE digest IN ({keys})

-- name: set_current
-- Make a version a workflow's current one.
INSERT INTO workflow_current (name, version, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET version = excluded.version,
updated_at = excluded.updated_at

-- name: set_paused
-- Pause or unpause a workflow's triggers.
INSERT INTO workflow_flags (name, paused, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET paused = excluded.paused,
updated_at = excluded.updated_at

-- name: paused_workflows
-- The workflows whose triggers are paused.
SELECT name FROM workflow_flags WHERE paused = 1

-- name: schema_versions
-- The migrations applied to the database, in order.
SELECT version FROM schema_migrations ORDER BY version


-- ====================================================================== trigger_queries.py

-- name: schedule_states
-- Every schedule's cursor and last fire.
SELECT * FROM schedule_state

-- name: queued_fire_keys
-- The schedules with a fire queued behind a run still going.
SELECT DISTINCT schedule_key FROM fires WHERE state = 'queued'

-- name: fires
-- The newest fires of every schedule.
SELECT * FROM fires ORDER BY id DESC LIMIT ?

-- name: fires_of_schedule
-- The newest fires of one schedule (by nominal time).
SELECT * FROM fires WHERE schedule_key = ? ORDER BY nominal DESC LIMIT ?

-- name: finished_runs
-- Runs that ended between two event ids, in history order, each with the state it ended
-- in ({ends}: one parameter per event kind that ends a run).
SELECT e.id AS event_id, e.to_state AS ended, r.* FROM events e JOIN runs r
ON r.id = e.run_id WHERE e.id > ? AND e.id <= ? AND e.kind IN ({ends})
ORDER BY e.id LIMIT ?

-- name: cursor
-- A reader's position in the history.
SELECT position FROM cursors WHERE name = ?

-- name: backfill
-- One backfill.
SELECT * FROM backfills WHERE id = ?

-- name: backfills_page
-- Backfills, newest first; {where}: the filter's `backfills_where_*` conditions.
SELECT * FROM backfills {where} ORDER BY created_at DESC, id

-- name: backfills_where_workflow
-- Filter: backfills of one workflow.
workflow = ?

-- name: backfills_where_state
-- Filter: backfills in one state.
state = ?

-- name: backfill_run_counts
-- How many runs of a backfill (by its fires) are in each run state.
SELECT r.state AS state, count(*) AS n FROM fires f JOIN runs r ON r.id = f.run_id
WHERE f.schedule_key = ? GROUP BY r.state


-- ====================================================================== trigger_verbs.py

-- name: advance_schedule
-- Move a schedule's cursor (and last fire) forward, never back. CASE rather than the
-- two-argument max(): portable to PostgreSQL.
INSERT INTO schedule_state (schedule_key, workflow, cursor, last_fire, updated_at)
VALUES (?, ?, ?, ?, ?) ON CONFLICT (schedule_key) DO UPDATE SET
cursor = CASE WHEN excluded.cursor > schedule_state.cursor THEN excluded.cursor
ELSE schedule_state.cursor END,
last_fire = CASE WHEN excluded.last_fire IS NULL THEN schedule_state.last_fire
WHEN schedule_state.last_fire IS NULL OR excluded.last_fire > schedule_state.last_fire
THEN excluded.last_fire ELSE schedule_state.last_fire END,
updated_at = excluded.updated_at

-- name: queued_fire
-- The oldest fire of a schedule queued behind a run still going.
SELECT id, nominal, params FROM fires WHERE schedule_key = ? AND state = 'queued'
ORDER BY nominal LIMIT 1

-- name: audit_run_started
-- The scheduler's audit record of a run it started, in the transaction that starts it.
INSERT INTO audit_log (at, actor, actor_kind, action, object, namespace, params,
outcome, detail, request_id, source) VALUES (?, 'scheduler', 'system', 'run.trigger',
?, ?, ?, 'ok', ?, NULL, 'scheduler')

-- name: insert_fire
-- A fire of (schedule, nominal time); nothing when it was fired before (exactly once).
INSERT INTO fires (schedule_key, workflow, nominal, state, params, created_at)
VALUES (?, ?, ?, 'new', ?, ?) ON CONFLICT (schedule_key, nominal) DO NOTHING
RETURNING id

-- name: set_fire
-- How a fire was decided (started, skipped, queued, failed).
UPDATE fires SET state = ?, run_id = ?, error = ? WHERE id = ?

-- name: unfinished_runs_of
-- Unfinished runs of a workflow whose trigger starts with a prefix, oldest first.
SELECT id FROM runs WHERE workflow = ? AND state IN {run_cancelable}
AND substr(trigger, 1, ?) = ? ORDER BY id

-- name: count_unfinished_runs_of
-- How many runs of a workflow whose trigger starts with a prefix are unfinished (a broker
-- trigger's in-flight limit).
SELECT count(*) AS n FROM runs WHERE workflow = ? AND state IN {run_cancelable}
AND substr(trigger, 1, ?) = ?

-- name: put_broker_consumer
-- A consumer's state, unless a newer lease epoch of its trigger wrote already.
INSERT INTO broker_consumers (trigger_key, workflow, kind, connection, destination, holder,
epoch, state, lag, last_message_at, error, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (trigger_key) DO UPDATE SET workflow = excluded.workflow, kind = excluded.kind,
connection = excluded.connection, destination = excluded.destination,
holder = excluded.holder, epoch = excluded.epoch, state = excluded.state,
lag = excluded.lag, last_message_at = excluded.last_message_at, error = excluded.error,
updated_at = excluded.updated_at
WHERE broker_consumers.epoch <= excluded.epoch

-- name: broker_consumers
-- Every consumer with its inbox counts (the inbox's (source, event_id) index serves them).
SELECT c.trigger_key AS key, c.workflow, c.kind, c.connection, c.destination, c.holder,
c.epoch, c.state, c.lag, c.last_message_at, c.error, c.updated_at,
(SELECT count(*) FROM inbox i WHERE i.source = 'broker:' || c.trigger_key) AS received,
(SELECT count(*) FROM inbox i WHERE i.source = 'broker:' || c.trigger_key
 AND i.errors IS NOT NULL) AS dead_lettered,
(SELECT i.errors FROM inbox i WHERE i.source = 'broker:' || c.trigger_key
 AND i.errors IS NOT NULL ORDER BY i.id DESC LIMIT 1) AS last_dead_letter
FROM broker_consumers c ORDER BY c.trigger_key

-- name: queued_fire_before
-- Whether a schedule has a fire queued before a nominal time.
SELECT 1 FROM fires WHERE schedule_key = ? AND state = 'queued' AND nominal < ? LIMIT 1

-- name: insert_inbox
-- A received event; nothing when (source, event id) came before (exactly once).
INSERT INTO inbox (source, event_id, type, payload, run_ids, errors, received_at)
VALUES (?, ?, ?, ?, '[]', ?, ?) ON CONFLICT (source, event_id) DO NOTHING
RETURNING id

-- name: inbox_entry
-- What the first delivery of an event started.
SELECT run_ids, errors FROM inbox WHERE source = ? AND event_id = ?

-- name: set_inbox_runs
-- The runs an event started.
UPDATE inbox SET run_ids = ? WHERE id = ?

-- name: prune_webhook_seen
-- Forget webhook replay keys whose time is over (their signatures are refused by now).
DELETE FROM webhook_seen WHERE expires_at < ?

-- name: insert_webhook_seen
-- A webhook delivery's replay key; nothing when it was seen before (a replay).
INSERT INTO webhook_seen (digest, source, event_id, expires_at) VALUES (?, ?, ?, ?)
ON CONFLICT (digest) DO NOTHING RETURNING digest

-- name: webhook_seen_entry
-- The event the first delivery of a replay key recorded.
SELECT source, event_id FROM webhook_seen WHERE digest = ?

-- name: insert_backfill
-- A new backfill, running.
INSERT INTO backfills (id, workflow, version, schedule_key, range_start, range_end,
max_active, priority, state, total, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?)

-- name: backfill_for_pacing
-- What pacing a backfill needs of it (locked where the dialect locks).
SELECT state, max_active, priority FROM backfills WHERE id = ?

-- name: backfill_created_run
-- A backfill created a run for a nominal time.
UPDATE backfills SET created = created + 1, cursor = CASE WHEN cursor IS NULL
OR cursor < ? THEN ? ELSE cursor END WHERE id = ?

-- name: complete_backfill
-- A backfill with nothing left to create or wait for.
UPDATE backfills SET state = 'completed', finished_at = ? WHERE id = ?

-- name: cancel_backfill
-- Stop a running backfill.
UPDATE backfills SET state = 'canceled', finished_at = ? WHERE id = ?
AND state = 'running'


-- ====================================================================== duties.py

-- name: set_cursor
-- Move a reader's position in the history forward, never back.
INSERT INTO cursors (name, position, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET position = CASE WHEN excluded.position >
cursors.position THEN excluded.position ELSE cursors.position END,
updated_at = excluded.updated_at

-- name: acquire_lease
-- Take a duty's lease if free or expired, or extend it for its holder; its epoch grows
-- whenever the holder changes or the lease had lapsed. No row: someone else holds it.
INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?, ?, 1, ?)
ON CONFLICT (name) DO UPDATE SET
epoch = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > ?
THEN leases.epoch ELSE leases.epoch + 1 END,
holder = excluded.holder, expires_at = excluded.expires_at
WHERE leases.holder = excluded.holder OR leases.expires_at <= ?
RETURNING epoch

-- name: renew_lease
-- Extend a lease still held under its epoch.
UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND epoch = ?
AND expires_at > ?

-- name: release_lease
-- Let the next scheduler take a lease at once.
UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ? AND epoch = ?


-- ====================================================================== accounts.py

-- name: insert_user
-- A new user; nothing when the name is taken (also by a concurrent transaction).
INSERT INTO users (id, name, password_hash, bindings, disabled, auth_epoch,
created_at, updated_at) VALUES (?, ?, ?, ?, 0, 0, ?, ?)
ON CONFLICT (name) DO NOTHING

-- name: user_by_name
-- One user, by name.
SELECT * FROM users WHERE name = ?

-- name: user_by_id
-- One user, by id.
SELECT * FROM users WHERE id = ?

-- name: users
-- Every user, by name.
SELECT * FROM users ORDER BY name

-- name: count_users
-- How many users there are.
SELECT count(*) AS n FROM users

-- name: user_id
-- A user's id, by name.
SELECT id FROM users WHERE name = ?

-- name: update_user
-- Change a user: every change bumps its auth epoch; {sets}: the columns changed.
UPDATE users SET auth_epoch = auth_epoch + 1, updated_at = ?{sets} WHERE id = ?

-- name: revoke_sessions_of
-- End every open session of a user (its credentials changed).
UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL

-- name: forget_login_failures
-- Drop failed logins older than the window that counts.
DELETE FROM login_failures WHERE at < ?

-- name: insert_login_failure
-- A failed login of a (user name, source) digest.
INSERT INTO login_failures (key, at) VALUES (?, ?)

-- name: login_failures
-- The failed logins of a digest, oldest first.
SELECT at FROM login_failures WHERE key = ? ORDER BY at, id

-- name: login_failures_since
-- The failed logins of a digest since a time, oldest first.
SELECT at FROM login_failures WHERE key = ? AND at >= ? ORDER BY at, id

-- name: clear_login_failures
-- Forget a digest's failed logins (a login succeeded).
DELETE FROM login_failures WHERE key = ?

-- name: insert_token
-- A new API token (its hash only).
INSERT INTO api_tokens (id, name, token_hash, bindings, created_by,
created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)

-- name: token
-- One API token, by id.
SELECT * FROM api_tokens WHERE id = ?

-- name: tokens
-- Every API token, oldest first.
SELECT * FROM api_tokens ORDER BY created_at, id

-- name: token_exists
-- Whether an API token exists.
SELECT 1 FROM api_tokens WHERE id = ?

-- name: revoke_token
-- Revoke an API token from now on (once).
UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL

-- name: insert_session
-- A new UI session (the hash of its id only).
INSERT INTO sessions (id_hash, user_id, csrf, auth_epoch, created_at,
expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, NULL)

-- name: drop_old_sessions
-- Sessions that ended before a time (expired or revoked): dead weight.
DELETE FROM sessions WHERE expires_at < ? OR revoked_at < ?

-- name: session
-- One UI session, by the hash of its id.
SELECT * FROM sessions WHERE id_hash = ?

-- name: revoke_session
-- End a UI session (once).
UPDATE sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL

-- name: insert_audit
-- One audit record (the table refuses UPDATE and DELETE).
INSERT INTO audit_log (at, actor, actor_kind, action, object, namespace,
params, outcome, detail, request_id, source)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id

-- name: audit_page
-- A page of the audit log, newest first; {where}: the filter's `audit_where_*`
-- conditions.
SELECT * FROM audit_log {where} ORDER BY id DESC LIMIT ?

-- name: audit_where_actor
-- Filter: one actor's records.
actor = ?

-- name: audit_where_action
-- Filter: one action's records.
action = ?

-- name: audit_where_namespace
-- Filter: records about one namespace.
namespace = ?

-- name: audit_where_outcome
-- Filter: records with one outcome.
outcome = ?

-- name: audit_where_since
-- Filter: records at or after a time.
at >= ?

-- name: audit_where_before
-- Filter: records before another (a page's cursor).
id < ?


-- ====================================================================== secrets.py

-- name: secret_exists
-- Whether a secret exists (locked where the dialect locks, as its upsert follows).
SELECT 1 FROM secrets WHERE namespace = ? AND name = ?

-- name: put_secret
-- Store a sealed secret, new or replacing the old one.
INSERT INTO secrets (namespace, name, key_id, nonce, ciphertext, created_at,
updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, name) DO
UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce,
ciphertext = excluded.ciphertext, updated_at = excluded.updated_at

-- name: sealed_secrets
-- Sealed secrets, by namespace and name; {where}: the `secrets_where_*` conditions.
SELECT {sealed_row_columns} FROM secrets {where} ORDER BY namespace, name

-- name: secrets_where_namespace
-- Filter: the secrets of one namespace.
namespace = ?

-- name: secrets_where_names
-- Filter: secrets of some names ({names}).
name IN ({names})

-- name: secret_metas
-- What may be shown of every secret (never a value), by namespace and name.
SELECT {secret_meta_columns} FROM secrets ORDER BY namespace, name

-- name: secret_metas_of
-- What may be shown of one namespace's secrets, by name.
SELECT {secret_meta_columns} FROM secrets WHERE namespace = ? ORDER BY name

-- name: delete_secret
-- Delete a secret; returns its name when it existed.
DELETE FROM secrets WHERE namespace = ? AND name = ? RETURNING name

-- name: reseal_secret
-- Replace a sealed value only while the row still holds the old one (a concurrent write
-- wins: its value is sealed under a current key already).
UPDATE secrets SET key_id = ?, nonce = ?, ciphertext = ?, updated_at = ?
WHERE namespace = ? AND name = ? AND key_id = ? AND nonce = ?
RETURNING name


-- ====================================================================== connections.py

-- name: connection_exists
-- Whether a connection exists (locked where the dialect locks, as its upsert follows).
SELECT 1 FROM connections WHERE namespace = ? AND name = ?

-- name: put_connection
-- Store a broker connection, new or replacing the old one (created_at kept).
INSERT INTO connections (namespace, name, kind, url, username, password_secret, tls,
created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, name) DO
UPDATE SET kind = excluded.kind, url = excluded.url, username = excluded.username,
password_secret = excluded.password_secret, tls = excluded.tls,
updated_at = excluded.updated_at

-- name: connection
-- One connection by namespace and name.
SELECT {connection_columns} FROM connections WHERE namespace = ? AND name = ?

-- name: connections
-- Every connection, by namespace and name.
SELECT {connection_columns} FROM connections ORDER BY namespace, name

-- name: connections_of
-- The connections of one namespace, by name.
SELECT {connection_columns} FROM connections WHERE namespace = ? ORDER BY name

-- name: delete_connection
-- Delete a connection; returns its name when it existed.
DELETE FROM connections WHERE namespace = ? AND name = ? RETURNING name

-- ====================================================================== templates.py

-- name: push_library
-- Store a library version unless that (name, version) exists; returns the name when stored.
INSERT INTO template_libraries (name, version, digest, description, body, pushed_by,
pushed_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name, version) DO NOTHING
RETURNING name

-- name: library_digest
-- The digest of a stored library version.
SELECT digest FROM template_libraries WHERE name = ? AND version = ?

-- name: library
-- One stored library version.
SELECT name, version, digest, description, body, pushed_by, pushed_at
FROM template_libraries WHERE name = ? AND version = ?

-- name: libraries
-- Every stored library version, by name and version.
SELECT name, version, digest, description, body, pushed_by, pushed_at
FROM template_libraries ORDER BY name, version

-- ====================================================================== migrations, transactions

-- name: applied_versions
-- The migrations applied so far (by the migration runner, under its lock).
SELECT version FROM schema_migrations

-- name: commit
-- Commit the transaction.
COMMIT

-- name: rollback
-- Roll the transaction back.
ROLLBACK


-- ====================================================================== metrics (0015)
-- A scrape's reads (docs/operating.md): each is bounded by what is live (unfinished runs,
-- ready task runs, running attempts, workers, schedules) or by the number of distinct
-- (workflow, outcome, bucket) keys, never by the history. {bucket} is the duration bucket
-- of `seconds` (`store.sql.reads.BUCKET`, from metric_records.DURATION_BUCKETS).

-- name: metric_ended
-- Runs and attempts ever ended, by family, workflow, outcome and duration bucket: the
-- folded totals plus the deltas not yet folded, in one statement (one snapshot).
SELECT family, workflow, outcome, bucket, sum(n) AS n, sum(seconds) AS seconds FROM (
SELECT family, workflow, outcome, bucket, n, seconds FROM metric_totals
UNION ALL
SELECT family, workflow, outcome, {bucket} AS bucket, 1 AS n, seconds FROM metric_deltas
) ended GROUP BY family, workflow, outcome, bucket

-- name: metric_active_runs
-- Unfinished runs by workflow and state (the runs_state index: live runs only).
SELECT workflow, state, count(*) AS n FROM runs WHERE state IN {run_cancelable}
GROUP BY workflow, state

-- name: metric_queues
-- Per queue, the task runs a worker may claim now and when the oldest became ready (the
-- claim index: the backlog only).
SELECT queue, count(*) AS ready, min(ready_at) AS oldest_ready_at FROM task_runs
WHERE state IN {task_claimable} AND ready_at <= ? GROUP BY queue

-- name: metric_running
-- Attempts running now, by the worker holding their lease.
SELECT lease_owner AS worker, count(*) AS n FROM task_runs WHERE state = {task_leased}
GROUP BY lease_owner

-- name: metric_workers
-- Workers registered as running that heartbeated lately (one killed on another host is
-- never marked dead: its heartbeats just stop).
SELECT * FROM workers WHERE state = 'running' AND heartbeat_at >= ? ORDER BY started_at, id

-- name: metric_schedules
-- Each schedule's latest fire: its nominal time and when it was decided.
SELECT s.schedule_key, s.workflow, s.last_fire, f.created_at AS fired_at
FROM schedule_state s LEFT JOIN fires f
ON f.schedule_key = s.schedule_key AND f.nominal = s.last_fire

-- name: metric_ping
-- The database round trip a scrape times.
SELECT 1 AS one

-- name: metric_fold_upto
-- The last delta of the next batch to fold (where writers are serialised: SQLite).
SELECT max(id) AS upto FROM (SELECT id FROM metric_deltas ORDER BY id LIMIT ?) batch

-- name: metric_fold
-- Add the deltas up to an id to the durable totals (`metric_fold_upto`).
INSERT INTO metric_totals (family, workflow, outcome, bucket, n, seconds)
SELECT family, workflow, outcome, {bucket}, count(*), sum(seconds) FROM metric_deltas
WHERE id <= ? GROUP BY 1, 2, 3, 4
ON CONFLICT (family, workflow, outcome, bucket) DO UPDATE SET
n = metric_totals.n + excluded.n, seconds = metric_totals.seconds + excluded.seconds

-- name: metric_fold_drop
-- Delete the deltas just folded.
DELETE FROM metric_deltas WHERE id <= ?


-- ====================================================================== traces

-- name: trace_lineage
-- A run's ancestors, nearest first (depth 0: the run itself), each with the task run that
-- started it and that task run's run and lease epoch (NULL for the top-level run).
WITH RECURSIVE up (depth, id, parent) AS (
SELECT 0, id, parent_task_run_id FROM runs WHERE id = ?
UNION ALL
SELECT up.depth + 1, r.id, r.parent_task_run_id FROM up
JOIN task_runs t ON t.id = up.parent JOIN runs r ON r.id = t.run_id WHERE up.depth < 64
) SELECT up.depth, up.id, up.parent, t.run_id AS parent_run_id, t.lease_epoch AS parent_epoch
FROM up LEFT JOIN task_runs t ON t.id = up.parent ORDER BY up.depth



-- ====================================================================== retention.py

-- name: retention_policy_exists
-- Whether a namespace has a retention policy (locked where the dialect locks).
SELECT 1 FROM retention_policies WHERE namespace = ?

-- name: put_retention_policy
-- Store a namespace's retention policy, new or replacing the old one.
INSERT INTO retention_policies (namespace, runs_days, logs_days, keep_last, audit_days,
audit_export_dir, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (namespace) DO UPDATE SET runs_days = excluded.runs_days,
logs_days = excluded.logs_days, keep_last = excluded.keep_last,
audit_days = excluded.audit_days, audit_export_dir = excluded.audit_export_dir,
updated_at = excluded.updated_at

-- name: retention_policy
-- One namespace's retention policy.
SELECT * FROM retention_policies WHERE namespace = ?

-- name: retention_policies
-- Every retention policy, by namespace.
SELECT * FROM retention_policies ORDER BY namespace

-- name: delete_retention_policy
-- Delete a namespace's retention policy (its namespace back if there was one).
DELETE FROM retention_policies WHERE namespace = ? RETURNING namespace

-- name: run_keep
-- A run's keep mark (locked where the dialect locks: the mark is written next).
SELECT keep FROM runs WHERE id = ?

-- name: set_run_keep
-- Mark a run kept (1) or not (0).
UPDATE runs SET keep = ? WHERE id = ?

-- name: prunable_where
-- (A condition, `r` being runs.) The runs of one workflow that retention may delete:
-- finished before a time, not kept, not a child run (children go with their parent) and
-- not among the newest N of the workflow. Parameters: workflow, time (twice: the index on
-- (workflow, created_at) bounds the scan), workflow, N.
r.workflow = ? AND r.created_at < ? AND r.finished_at < ?
AND r.state NOT IN {run_cancelable} AND r.keep = 0 AND r.parent_task_run_id IS NULL
AND r.id NOT IN (SELECT n.id FROM runs n WHERE n.workflow = ?
ORDER BY n.created_at DESC, n.id DESC LIMIT ?)

-- name: prunable_runs
-- The oldest prunable runs of one workflow ({prunable_where}), at most a number.
SELECT r.id, r.created_at FROM runs r WHERE {prunable_where}
ORDER BY r.created_at, r.id LIMIT ?

-- name: prunable_runs_after
-- The same, after a position (created_at, id): where the previous batch stopped.
SELECT r.id, r.created_at FROM runs r WHERE {prunable_where}
AND (r.created_at > ? OR (r.created_at = ? AND r.id > ?))
ORDER BY r.created_at, r.id LIMIT ?

-- name: child_runs_of
-- The child runs (sub-workflows) that task runs of the given runs started, with what
-- decides whether their family may go.
SELECT c.id AS id, c.state AS state, c.keep AS keep, t.run_id AS parent
FROM runs c JOIN task_runs t ON t.id = c.parent_task_run_id WHERE t.run_id IN ({ids})

-- name: count_owned
-- How many rows of each kind the given runs own (a dry run's counts).
SELECT
(SELECT count(*) FROM task_runs WHERE run_id IN ({ids})) AS task_runs,
(SELECT count(*) FROM attempts WHERE run_id IN ({ids})) AS attempts,
(SELECT count(*) FROM events WHERE run_id IN ({ids})) AS events,
(SELECT count(*) FROM logs WHERE run_id IN ({ids})) AS logs,
(SELECT count(*) FROM fires WHERE run_id IN ({ids})) AS fires

-- name: prune_logs_of
-- Delete the log lines of the given runs.
DELETE FROM logs WHERE run_id IN ({ids})

-- name: prune_events_of
-- Delete the history of the given runs.
DELETE FROM events WHERE run_id IN ({ids})

-- name: prune_attempts_of
-- Delete the attempts of the given runs.
DELETE FROM attempts WHERE run_id IN ({ids})

-- name: prune_fires_of
-- Delete the schedule fires that started the given runs. Safe: a schedule never decides
-- a nominal time behind its cursor again, so the unique key is no longer needed.
DELETE FROM fires WHERE run_id IN ({ids})

-- name: delete_waits_of_run
-- The run finished (canceled, failed, timed out): none of its steps waits any more. A
-- wait with neither a deadline nor a check would otherwise linger until retention.
DELETE FROM task_waits WHERE run_id = ?

-- name: prune_waits_of
-- Delete the wait rows of the given runs' steps (a finished run's are gone already, but a
-- row left by a crash between resolve and delete would otherwise outlive its run).
DELETE FROM task_waits WHERE run_id IN ({ids})

-- name: prune_signals_of
-- Delete the signals sent to the given runs, taken or not.
DELETE FROM run_signals WHERE run_id IN ({ids})

-- name: prune_task_runs_of
-- Delete the task runs of the given runs (after their attempts: a foreign key).
DELETE FROM task_runs WHERE run_id IN ({ids})

-- name: prune_runs_of
-- Delete the given runs (after everything that refers to them).
DELETE FROM runs WHERE id IN ({ids})

-- name: old_logs_where
-- (A condition, `r` being runs.) Finished, unkept runs of one workflow that ended before
-- a time. Parameters: workflow, time (twice).
r.workflow = ? AND r.created_at < ? AND r.finished_at < ?
AND r.state NOT IN {run_cancelable} AND r.keep = 0

-- name: old_log_ids
-- Up to a number of log lines of runs matching {old_logs_where}, oldest runs first.
SELECT l.id AS id FROM runs r JOIN logs l ON l.run_id = r.id WHERE {old_logs_where}
ORDER BY r.created_at, l.id LIMIT ?

-- name: count_old_logs
-- How many log lines runs matching {old_logs_where} have (a dry run).
SELECT count(*) AS n FROM runs r JOIN logs l ON l.run_id = r.id WHERE {old_logs_where}

-- name: delete_logs_by_id
-- Delete the given log lines.
DELETE FROM logs WHERE id IN ({ids})

-- name: old_history_events
-- Up to a number of history rows of no run (triggers, schedules, registrations, earlier
-- prunes) older than a time, oldest first.
SELECT id FROM events WHERE run_id IS NULL AND at < ? ORDER BY id LIMIT ?

-- name: old_inbox
-- Up to a number of received events older than a time, oldest first.
SELECT id FROM inbox WHERE received_at < ? ORDER BY id LIMIT ?

-- name: old_fires
-- Up to a number of schedule fires that started no run (skipped for overlap, or failed)
-- older than a time, oldest first.
SELECT id FROM fires WHERE state IN ('skipped', 'failed') AND created_at < ?
ORDER BY id LIMIT ?

-- name: delete_events_by_id
-- Delete the given event rows.
DELETE FROM events WHERE id IN ({ids})

-- name: delete_inbox_by_id
-- Delete the given received events.
DELETE FROM inbox WHERE id IN ({ids})

-- name: delete_fires_by_id
-- Delete the given schedule fires.
DELETE FROM fires WHERE id IN ({ids})

-- name: audit_to_prune
-- The oldest audit records of a scope ({scope}: an `audit_scope_*` entry) older than a
-- time, never the newest record of the log (so ids never restart), at most a number.
SELECT * FROM audit_log WHERE at < ? AND id < (SELECT max(id) FROM audit_log) AND {scope}
ORDER BY id LIMIT ?

-- name: audit_scope_namespace
-- Scope: the audit records of one namespace.
namespace = ?

-- name: audit_scope_others
-- Scope: the audit records of no namespace or of none of the given namespaces.
(namespace IS NULL OR namespace NOT IN ({names}))

-- name: audit_scope_all
-- Scope: every audit record.
1 = 1

-- name: open_audit_gate
-- Let the audit log delete rows up to an id older than a time (retention only; closed
-- again in the same transaction, see docs/security.md).
INSERT INTO audit_prune_gate (id, up_to_id, before) VALUES (1, ?, ?)

-- name: delete_audit_rows
-- Delete exported audit records of a scope ({scope}) up to an id older than a time.
DELETE FROM audit_log WHERE id <= ? AND at < ? AND {scope}

-- name: close_audit_gate
-- Close the audit log's pruning gate.
DELETE FROM audit_prune_gate

-- ====================================================================== notifications.py

-- name: notify_channel_exists
-- Whether a notification channel exists (locked where the dialect locks: its upsert follows).
SELECT 1 FROM notification_channels WHERE namespace = ? AND name = ?

-- name: notify_put_channel
-- Store a notification channel, new or replacing the old one (created_at kept).
INSERT INTO notification_channels (namespace, name, kind, config, secret, created_at,
updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, name) DO UPDATE SET
kind = excluded.kind, config = excluded.config, secret = excluded.secret,
updated_at = excluded.updated_at

-- name: notify_channel
-- One notification channel by namespace and name.
SELECT * FROM notification_channels WHERE namespace = ? AND name = ?

-- name: notify_channels
-- Every notification channel, by namespace and name.
SELECT * FROM notification_channels ORDER BY namespace, name

-- name: notify_channels_of
-- The notification channels of one namespace, by name.
SELECT * FROM notification_channels WHERE namespace = ? ORDER BY name

-- name: notify_delete_channel
-- Delete a notification channel; returns its name when it existed.
DELETE FROM notification_channels WHERE namespace = ? AND name = ? RETURNING name

-- name: notify_rule_exists
-- Whether a notification rule exists (locked where the dialect locks: its upsert follows).
SELECT 1 FROM notification_rules WHERE namespace = ? AND name = ?

-- name: notify_put_rule
-- Store a notification rule, new or replacing the old one (created_at kept).
INSERT INTO notification_rules (namespace, name, channel, workflows, tags, events, template,
created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (namespace, name)
DO UPDATE SET channel = excluded.channel, workflows = excluded.workflows,
tags = excluded.tags, events = excluded.events, template = excluded.template,
updated_at = excluded.updated_at

-- name: notify_start_cursor
-- Start the notifications duty's history position at the newest event, unless it has one:
-- written with the first rule, so that a rule hears of everything after it was made.
-- (WHERE true: SQLite would otherwise read ON CONFLICT as a join's ON.)
INSERT INTO cursors (name, position, updated_at)
SELECT 'notifications', coalesce(max(id), 0), ? FROM events WHERE true
ON CONFLICT (name) DO NOTHING

-- name: notify_rules
-- Every notification rule, by namespace and name.
SELECT * FROM notification_rules ORDER BY namespace, name

-- name: notify_rules_of
-- The notification rules of one namespace, by name.
SELECT * FROM notification_rules WHERE namespace = ? ORDER BY name

-- name: notify_delete_rule
-- Delete a notification rule; returns its name when it existed.
DELETE FROM notification_rules WHERE namespace = ? AND name = ? RETURNING name

-- name: notable_events
-- History rows between two event ids that a notification rule may match (runs that
-- failed or succeeded, task runs out of retries, fires skipped, failed or missed, approvals
-- waiting for a decision), in history
-- order, with the names a rule needs.
SELECT e.id, e.kind, e.at, e.run_id, e.data, r.workflow, r.error AS run_error,
r.trigger, r.created_at, r.started_at, t.task_name, t.error AS task_error FROM events e LEFT JOIN runs r ON r.id = e.run_id
LEFT JOIN task_runs t ON t.id = e.task_run_id WHERE e.id > ? AND e.id <= ?
AND e.kind IN ('run.fail', 'run.succeed', 'task.fail', 'schedule.skipped', 'schedule.failed',
'schedule.missed', 'wait.approval_pending', 'asset.stale')
ORDER BY e.id LIMIT ?

-- name: late_candidates
-- Unfinished runs of some workflows ({names}: one parameter each), oldest first.
SELECT * FROM runs WHERE state IN {run_cancelable} AND workflow IN ({names})
ORDER BY created_at LIMIT ?

-- name: enqueue_delivery
-- Add a message to the outbox, unless one with the same dedupe key is there.
INSERT INTO notification_deliveries (dedupe_key, namespace, rule, channel, event, workflow,
run_id, message, payload, state, attempts, next_attempt_at, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING
RETURNING id

-- name: due_deliveries
-- Pending deliveries whose next attempt is due, oldest first.
SELECT * FROM notification_deliveries WHERE state = 'pending' AND next_attempt_at <= ?
ORDER BY next_attempt_at, id LIMIT ?

-- name: finish_delivery_attempt
-- Record one attempt of a delivery, if nobody recorded it before (attempts as read).
UPDATE notification_deliveries SET state = ?, attempts = attempts + 1, next_attempt_at = ?,
last_error = ?, sent_at = ? WHERE id = ? AND attempts = ? AND state = 'pending'
RETURNING id

-- name: audit_delivery
-- The scheduler's audit record of a delivery attempt, in the transaction recording it.
INSERT INTO audit_log (at, actor, actor_kind, action, object, namespace, params,
outcome, detail, request_id, source) VALUES (?, 'scheduler', 'system',
'notification.deliver', ?, ?, ?, ?, ?, NULL, 'scheduler')

-- name: deliveries_page
-- The newest deliveries ({where}: optional namespace and state conditions).
SELECT * FROM notification_deliveries {where} ORDER BY id DESC LIMIT ?

-- name: deliveries_where_namespace
-- Condition: deliveries of a namespace.
namespace = ?

-- name: deliveries_where_state
-- Condition: deliveries in a state.
state = ?

-- name: cache_entry
-- One task cache entry (docs/caching.md), locked: a cached task's lookup decides on it.
SELECT state, result, run_id, task_run_id, expires_at FROM task_cache WHERE namespace = ? AND workflow = ? AND task_name = ? AND cache_key = ?

-- name: cache_owner
-- Whether the task run computing a cache entry still runs under a live lease.
SELECT state, lease_expires_at FROM task_runs WHERE id = ?

-- name: cache_claim
-- Take a new cache key to compute it; nothing when another transaction took it first.
INSERT INTO task_cache (namespace, workflow, task_name, cache_key, state, result, run_id, task_run_id, created_at, expires_at)
VALUES (?, ?, ?, ?, 'computing', NULL, ?, ?, ?, NULL)
ON CONFLICT (namespace, workflow, task_name, cache_key) DO NOTHING
RETURNING task_run_id

-- name: cache_take_over
-- Take a key over (expired, refreshed, or its computing task run stopped), guarded by the
-- owner and state the lookup saw.
UPDATE task_cache SET state = 'computing', result = NULL, run_id = ?, task_run_id = ?, created_at = ?, expires_at = NULL
WHERE namespace = ? AND workflow = ? AND task_name = ? AND cache_key = ? AND task_run_id = ? AND state = ?
RETURNING task_run_id

-- name: cache_store
-- The finish of the attempt that computed an entry writes its result (the task run's
-- result column as recorded), in the transaction that records the success; the entry's
-- state ('ready') is a parameter: a task_cache state, not a task run's.
INSERT INTO task_cache (namespace, workflow, task_name, cache_key, state, result, run_id, task_run_id, created_at, expires_at)
SELECT ?, ?, ?, ?, ?, t.result, t.run_id, t.id, ?, ? FROM task_runs t WHERE t.id = ?
ON CONFLICT (namespace, workflow, task_name, cache_key) DO UPDATE SET state = excluded.state, result = excluded.result, run_id = excluded.run_id, task_run_id = excluded.task_run_id, created_at = excluded.created_at, expires_at = excluded.expires_at

-- name: cache_release
-- A computing attempt that did not succeed gives its key up: a waiter takes over.
DELETE FROM task_cache WHERE namespace = ? AND workflow = ? AND task_name = ? AND cache_key = ? AND state = 'computing' AND task_run_id = ?

-- name: cache_hit_mark
-- A task run that succeeded from the cache links the run and task run that produced it.
UPDATE task_runs SET cache_run_id = ?, cache_task_run_id = ? WHERE id = ?

-- name: run_no_cache
-- Whether a run was started with "no cache" (its cached tasks compute and overwrite).
SELECT no_cache FROM runs WHERE id = ?

-- name: set_run_no_cache
-- Start a run with "no cache", in the transaction that creates it.
UPDATE runs SET no_cache = 1 WHERE id = ?

-- name: cache_entries
-- Task cache entries ({where}: optional namespace and workflow filters), newest first.
SELECT namespace, workflow, task_name, cache_key, state, run_id, task_run_id, created_at, expires_at FROM task_cache {where} ORDER BY created_at DESC LIMIT ?

-- name: cache_clear
-- Delete task cache entries ({where}: optional namespace and workflow filters).
DELETE FROM task_cache {where}

-- name: cache_in_namespaces
-- A cache filter: the entry's namespace is one of these.
namespace IN ({names})

-- name: cache_of_workflow
-- A cache filter: the entry belongs to this workflow.
workflow = ?

-- name: cache_expired
-- Retention: entries past their ttl.
DELETE FROM task_cache WHERE expires_at IS NOT NULL AND expires_at <= ?

-- name: cache_orphans
-- Retention: entries whose source run is gone.
DELETE FROM task_cache WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.id = task_cache.run_id)

-- name: prune_cache_of
-- Delete the cache entries the given runs produced (their results go with them).
DELETE FROM task_cache WHERE run_id IN ({ids})
