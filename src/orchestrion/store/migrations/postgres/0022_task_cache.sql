-- Task result caching (docs/caching.md): one entry per (namespace, workflow, task, key).
-- state 'computing': task run `task_run_id` of run `run_id` is computing it (others
-- with the same key wait; if it stops running, one of them takes over); 'ready': `result`
-- is the result that task run produced, written in the transaction that finished it, and
-- usable until `expires_at` (NULL: until retention removes its source run).
CREATE TABLE task_cache (
    namespace    TEXT NOT NULL,
    workflow     TEXT NOT NULL,
    task_name    TEXT NOT NULL,
    cache_key    TEXT NOT NULL,
    state        TEXT NOT NULL,
    result       TEXT,
    run_id       TEXT NOT NULL,
    task_run_id  BIGINT NOT NULL,
    created_at   DOUBLE PRECISION NOT NULL,
    expires_at   DOUBLE PRECISION,
    PRIMARY KEY (namespace, workflow, task_name, cache_key)
);
CREATE INDEX task_cache_expires ON task_cache (expires_at);
CREATE INDEX task_cache_run ON task_cache (run_id);

-- A run started with "no cache" (`--no-cache`): its cached tasks compute and overwrite.
ALTER TABLE runs ADD COLUMN no_cache INTEGER NOT NULL DEFAULT 0;

-- A task run that succeeded from the cache: the run and task run that produced the result.
ALTER TABLE task_runs ADD COLUMN cache_run_id TEXT;
ALTER TABLE task_runs ADD COLUMN cache_task_run_id BIGINT;
