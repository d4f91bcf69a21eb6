-- Slots (store/slots.py): per-queue and per-key concurrency limits. A slot is a running
-- task run with an unexpired lease, counted at claim time; nothing is incremented, so a
-- killed worker's slot frees itself when its lease expires.

-- Operator limits: queue -> most running task runs at once across all workers.
CREATE TABLE queue_limits (
    queue       TEXT PRIMARY KEY,
    max_running INTEGER NOT NULL CHECK (max_running >= 1),
    updated_at  REAL NOT NULL
);

-- A task's rendered concurrency key and its limit (NULL: none), set when it becomes ready.
ALTER TABLE task_runs ADD COLUMN slot_key TEXT;
ALTER TABLE task_runs ADD COLUMN slot_limit INTEGER;

CREATE INDEX task_runs_slot_keys ON task_runs (slot_key)
    WHERE state = 'running' AND slot_key IS NOT NULL;
CREATE INDEX task_runs_running_queue ON task_runs (queue) WHERE state = 'running';
