-- Large results' objects and artifacts (migration 0023; docs/results.md).

-- name: insert_result_object
-- Remember an object that holds a task run's result (for reads and for retention).
INSERT INTO result_objects (run_id, task_run_id, uri, size, sha256, created_at)
SELECT run_id, id, ?, ?, ?, ? FROM task_runs WHERE id = ?

-- name: insert_artifact
-- One artifact of the attempt (task run, epoch).
INSERT INTO artifacts (run_id, task_run_id, task_name, attempt, kind, title, body, uri,
size, sha256, media_type, created_at)
SELECT t.run_id, t.id, t.task_name,
COALESCE((SELECT a.number FROM attempts a WHERE a.task_run_id = t.id AND a.epoch = ?), 0),
?, ?, ?, ?, ?, ?, ?, ? FROM task_runs t WHERE t.id = ?

-- name: artifacts_of_run
-- A run's artifacts, oldest first.
SELECT id, run_id, task_run_id, task_name, attempt, kind, title, body, uri, size, sha256,
media_type, created_at FROM artifacts WHERE run_id = ? ORDER BY id

-- name: artifact
-- One artifact of a run.
SELECT id, run_id, task_run_id, task_name, attempt, kind, title, body, uri, size, sha256,
media_type, created_at FROM artifacts WHERE run_id = ? AND id = ?

-- name: objects_of_runs
-- Every object the given runs own (results and file artifacts), for retention.
SELECT uri FROM result_objects WHERE run_id IN ({ids})
UNION ALL SELECT uri FROM artifacts WHERE run_id IN ({ids}) AND uri IS NOT NULL

-- name: prune_result_objects_of
-- Delete the result object rows of the given runs.
DELETE FROM result_objects WHERE run_id IN ({ids})

-- name: prune_artifacts_of
-- Delete the artifacts of the given runs.
DELETE FROM artifacts WHERE run_id IN ({ids})
