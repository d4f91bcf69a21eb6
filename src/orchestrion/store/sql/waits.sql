-- The SQL of steps that wait without a worker (`orchestrion.store.sql.waits`): both
-- dialects send it as written. A row of task_waits exists while its task run waits.

-- name: upsert_wait
-- A task run starts waiting (again, after a retry re-opened it: the row is replaced).
INSERT INTO task_waits (task_run_id, run_id, kind, name, deadline, check_at, checks, created_at)
VALUES (?, ?, ?, ?, ?, ?, 0, ?)
ON CONFLICT (task_run_id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
    deadline = excluded.deadline, check_at = excluded.check_at, checks = 0,
    created_at = excluded.created_at

-- name: wait_row
-- One wait, by task run.
SELECT task_run_id, run_id, kind, name, deadline, check_at, checks FROM task_waits
WHERE task_run_id = ?

-- name: delete_wait
-- The wait is over (resolved, or its task run no longer waits).
DELETE FROM task_waits WHERE task_run_id = ?

-- name: task_run_by_name
-- A run's top-level task run by task name.
SELECT id, state FROM task_runs WHERE run_id = ? AND task_name = ? AND map_index = -1

-- name: open_signal
-- The oldest signal of this name sent to the run that no step took yet.
SELECT id, data FROM run_signals WHERE run_id = ? AND name = ? AND taken_by IS NULL
ORDER BY id LIMIT 1

-- name: take_signal
-- A waiting step takes the signal (guarded: a signal is taken once).
UPDATE run_signals SET taken_by = ? WHERE id = ? AND taken_by IS NULL

-- name: insert_signal
-- A signal sent to a run, kept until a step takes it.
INSERT INTO run_signals (run_id, name, data, sent_by, sent_at) VALUES (?, ?, ?, ?, ?)
RETURNING id

-- name: signal_waiter
-- The task run of the run waiting on this signal now, if any (the oldest).
SELECT w.task_run_id FROM task_waits w JOIN task_runs t ON t.id = w.task_run_id
WHERE w.run_id = ? AND w.kind = 'signal' AND w.name = ? AND t.state = {task_awaiting}
ORDER BY w.task_run_id LIMIT 1

-- name: event_waiters
-- The waits on events of one type, across runs (their filters are checked one by one).
SELECT w.task_run_id, w.run_id FROM task_waits w JOIN task_runs t ON t.id = w.task_run_id
WHERE w.kind = 'event' AND w.name = ? AND t.state = {task_awaiting}
ORDER BY w.task_run_id LIMIT ?

-- name: due_deadlines
-- Waits whose timeout fell due.
SELECT task_run_id FROM task_waits WHERE deadline IS NOT NULL AND deadline <= ?
ORDER BY deadline LIMIT ?

-- name: due_checks
-- Sensors whose next check fell due.
SELECT task_run_id FROM task_waits WHERE check_at IS NOT NULL AND check_at <= ?
ORDER BY check_at LIMIT ?

-- name: claim_check
-- Take a due check (guarded by the time it was due at): `check_at` moves to the end of
-- the check's lease, so a scheduler that dies mid-check leaves it due again then.
UPDATE task_waits SET check_at = ?, checks = checks + 1
WHERE task_run_id = ? AND check_at IS NOT NULL AND check_at <= ?

-- name: next_check
-- A check came back false: the next one is due at `check_at`.
UPDATE task_waits SET check_at = ? WHERE task_run_id = ?

-- name: list_waits
-- Task runs waiting on an approval, a signal, an event or a sensor, oldest first; {where}
-- narrows them to one run or to namespaces.
SELECT w.task_run_id, w.run_id, w.kind, w.name, w.deadline, w.check_at, w.checks,
    w.created_at, t.task_name, r.workflow, r.version
FROM task_waits w JOIN task_runs t ON t.id = w.task_run_id JOIN runs r ON r.id = w.run_id
{where} ORDER BY w.created_at, w.task_run_id LIMIT ?

-- name: waits_of_run
-- Only one run's waits.
w.run_id = ?

-- name: waits_in_state
-- Only waits whose task run still waits.
t.state = {task_awaiting}

-- name: count_waiting
-- How many task runs wait without a worker (what a thousand waiting runs cost: rows).
SELECT COUNT(*) AS n FROM task_waits
