-- Routing: a task run's worker-label requirements, as canonical JSON text (store/routing.py);
-- NULL when it requires nothing. A claim matches it by equality against the subsets of the
-- claiming worker's labels.
ALTER TABLE task_runs ADD COLUMN requires TEXT;

-- Priority ageing: how many times the claim priority was raised for waiting (store verb
-- age_priorities, run by the housekeeping sweep).
ALTER TABLE task_runs ADD COLUMN aged INTEGER NOT NULL DEFAULT 0;
