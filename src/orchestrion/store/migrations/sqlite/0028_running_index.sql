-- One index of running task runs where there were three (by lease expiry, by owner, by
-- queue). Every task run enters the running set when claimed and leaves it when it ends,
-- so each index over that set is two B-tree changes and a page written to the WAL per
-- attempt: a chain's hop spent about 14 us of its SQL on the two extra ones
-- (docs/performance.md, session 17). The set is small on one machine (at most the
-- workers' concurrency), so the queries that filter it by owner or by expiry scan this
-- index whole instead of seeking (it covers them); the claim's count of a limited queue's
-- running task runs, on the hot path, still seeks by its leading column.
DROP INDEX task_runs_lease;
DROP INDEX task_runs_owner;
DROP INDEX task_runs_running_queue;
CREATE INDEX task_runs_running ON task_runs (queue, lease_owner, lease_expires_at)
    WHERE state = 'running';
