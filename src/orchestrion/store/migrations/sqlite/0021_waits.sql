-- Waiting without a worker (issue: approvals, signals, sensors). A task run waiting on an
-- approval, a signal, an event or a sensor has one row here while it waits: its timeout
-- (`deadline`) and, for a sensor, its next check (`check_at`) are due-times that the
-- scheduler's `waits` duty resolves; no worker holds it. No foreign keys: retention prunes
-- runs, and a row of a run that ended is removed by whoever finds it.
CREATE TABLE task_waits (
    task_run_id  INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL,
    -- approval | signal | event | file | http | sql
    kind         TEXT NOT NULL,
    -- a signal's name or an event's type (NULL for the others)
    name         TEXT,
    deadline     REAL,
    check_at     REAL,
    checks       INTEGER NOT NULL DEFAULT 0,
    created_at   REAL NOT NULL
);
CREATE INDEX task_waits_deadline ON task_waits (deadline) WHERE deadline IS NOT NULL;
CREATE INDEX task_waits_check ON task_waits (check_at) WHERE check_at IS NOT NULL;
CREATE INDEX task_waits_name ON task_waits (kind, name) WHERE name IS NOT NULL;
CREATE INDEX task_waits_run ON task_waits (run_id);
-- Signals sent to a run, kept until a `wait_for: {signal}` step takes them (`taken_by`),
-- so that one sent before the step waits is not lost.
CREATE TABLE run_signals (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL,
    name         TEXT NOT NULL,
    data         TEXT NOT NULL,
    sent_by      TEXT,
    sent_at      REAL NOT NULL,
    taken_by     INTEGER
);
CREATE INDEX run_signals_open ON run_signals (run_id, name, id) WHERE taken_by IS NULL;
