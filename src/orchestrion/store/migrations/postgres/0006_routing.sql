-- Routing: a task run's worker-label requirements, as canonical JSON text (store/routing.py);
-- NULL when it requires nothing. A claim matches it by equality against the subsets of the
-- claiming worker's labels.
ALTER TABLE task_runs ADD COLUMN requires TEXT;
