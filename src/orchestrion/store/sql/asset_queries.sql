-- Data assets' SQL, both dialects (`orchestrion.store.sql.assets`): kept apart from the
-- main file so that assets stay one reviewable piece.

-- name: produced_row
-- A task run that reported assets: whether its success was recorded, and who it was.
SELECT state, run_id, task_name, attempts FROM task_runs WHERE id = ?

-- name: insert_event
-- One asset event; a repeated report of the same task run writes nothing.
INSERT INTO asset_events
    (namespace, asset, part, workflow, run_id, task_name, task_run_id, attempt, metadata,
     created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING

-- name: summaries
-- Every asset with events: how many, and the newest.
SELECT namespace, asset, COUNT(*) AS events, MAX(id) AS last_event_id,
       MAX(created_at) AS last_at
FROM asset_events {where}
GROUP BY namespace, asset
ORDER BY namespace, asset

-- name: events_of
-- An asset's events, newest first.
SELECT {event_columns} FROM asset_events
WHERE namespace = ? AND asset = ? AND id < ? {partition}
ORDER BY id DESC LIMIT ?

-- name: unconsumed
-- The events of some assets that a trigger has not consumed, oldest first.
SELECT {event_columns} FROM asset_events e
WHERE e.namespace = ? AND e.asset IN ({assets}) AND e.id > ?
  AND NOT EXISTS (
      SELECT 1 FROM asset_consumed c WHERE c.trigger_key = ? AND c.event_id = e.id
  )
ORDER BY e.id LIMIT 1000

-- name: consume
-- A trigger consumes one event: the primary key is the compare-and-set.
INSERT INTO asset_consumed (trigger_key, event_id, run_id) VALUES (?, ?, ?)
ON CONFLICT DO NOTHING

-- name: newest_id
-- The newest asset event id (0 with none).
SELECT COALESCE(MAX(id), 0) AS top FROM asset_events

-- name: insert_stale
-- A stale notice, once per (asset, newest event).
INSERT INTO asset_stale (namespace, asset, last_event, stale_at) VALUES (?, ?, ?, ?)
ON CONFLICT DO NOTHING
