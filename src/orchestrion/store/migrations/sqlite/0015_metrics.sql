-- Metrics from durable rows (docs/operating.md). Every attempt and run that ends appends a
-- delta row, written by a trigger in the transaction that ended it (so no code path that
-- closes an attempt can forget it, and no concurrent writers contend for a counter row);
-- the housekeeping duty folds deltas into `metric_totals` in small batches. A scrape sums
-- both: every server answers the same, the counters never go back, and deleting old runs
-- (retention) does not lower them.
CREATE TABLE metric_deltas (
    id        INTEGER PRIMARY KEY,
    -- 'run' or 'attempt'
    family    TEXT NOT NULL,
    workflow  TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    seconds   REAL NOT NULL
);

-- family, workflow, outcome and duration bucket (an index into the bounds of
-- `orchestrion.store.metric_records.DURATION_BUCKETS`) -> how many ended, and their total seconds.
CREATE TABLE metric_totals (
    family    TEXT NOT NULL,
    workflow  TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    bucket    INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    seconds   REAL NOT NULL,
    PRIMARY KEY (family, workflow, outcome, bucket)
);

CREATE TRIGGER attempts_metric AFTER UPDATE OF outcome ON attempts
WHEN OLD.outcome IS NULL AND NEW.outcome IS NOT NULL
BEGIN
    INSERT INTO metric_deltas (family, workflow, outcome, seconds)
    SELECT 'attempt', r.workflow, NEW.outcome,
           max(0.0, coalesce(NEW.finished_at, NEW.started_at) - NEW.started_at)
    FROM runs r WHERE r.id = NEW.run_id;
END;

-- A run that ends (again, after a retry reopened it) counts once per ending.
CREATE TRIGGER runs_metric AFTER UPDATE OF state ON runs
WHEN NEW.state IN ('succeeded', 'failed', 'canceled')
 AND OLD.state NOT IN ('succeeded', 'failed', 'canceled')
BEGIN
    INSERT INTO metric_deltas (family, workflow, outcome, seconds)
    VALUES ('run', NEW.workflow, NEW.state,
            max(0.0, coalesce(NEW.finished_at, NEW.created_at)
                     - coalesce(NEW.started_at, NEW.created_at)));
END;

-- How many attempts a worker runs at once (NULL: a worker from before 0015).
ALTER TABLE workers ADD COLUMN slots INTEGER;
