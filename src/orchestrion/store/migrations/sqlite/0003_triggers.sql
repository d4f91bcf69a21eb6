-- Schedules, event triggers, run triggers, backfills and scheduler leases.

-- Per schedule: every nominal fire time at or before `cursor` has been decided.
CREATE TABLE schedule_state (
    schedule_key  TEXT PRIMARY KEY,
    workflow      TEXT NOT NULL,
    cursor        REAL NOT NULL,
    last_fire     REAL,
    updated_at    REAL NOT NULL
);

-- One row per (schedule, nominal time) ever decided: the unique key is what makes restarts,
-- two schedulers and clock changes unable to fire twice. Backfills use 'backfill:<id>' keys.
-- state: started (run_id set), skipped (overlap), queued (waiting for the previous run),
-- failed (the params did not fit; error set).
CREATE TABLE fires (
    id            INTEGER PRIMARY KEY,
    schedule_key  TEXT NOT NULL,
    workflow      TEXT NOT NULL,
    nominal       REAL NOT NULL,
    state         TEXT NOT NULL,
    run_id        TEXT,
    params        TEXT NOT NULL,
    error         TEXT,
    created_at    REAL NOT NULL,
    UNIQUE (schedule_key, nominal)
);
CREATE INDEX fires_queued ON fires (schedule_key, nominal) WHERE state = 'queued';
CREATE INDEX fires_run ON fires (run_id) WHERE run_id IS NOT NULL;

-- Received events (API events, webhooks, finished runs), recorded before anything is
-- acknowledged; the unique key makes a redelivered event start nothing new.
CREATE TABLE inbox (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    type         TEXT NOT NULL,
    payload      TEXT NOT NULL,
    run_ids      TEXT NOT NULL,
    errors       TEXT,
    received_at  REAL NOT NULL,
    UNIQUE (source, event_id)
);

CREATE TABLE backfills (
    id            TEXT PRIMARY KEY,
    workflow      TEXT NOT NULL,
    version       TEXT NOT NULL,
    schedule_key  TEXT NOT NULL,
    range_start   REAL NOT NULL,
    range_end     REAL NOT NULL,
    max_active    INTEGER NOT NULL,
    priority      INTEGER NOT NULL,
    -- running -> completed | canceled
    state         TEXT NOT NULL,
    total         INTEGER NOT NULL,
    created       INTEGER NOT NULL DEFAULT 0,
    -- the latest nominal time a run was created for
    cursor        REAL,
    created_at    REAL NOT NULL,
    finished_at   REAL
);
CREATE INDEX backfills_state ON backfills (state, created_at);

-- Scheduler duties (cron, backfill, run triggers, maintenance): one holder at a time.
-- `epoch` grows with every change of holder (a fencing token).
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    epoch       INTEGER NOT NULL,
    expires_at  REAL NOT NULL
);

-- Positions of readers of the event history (the run-trigger duty).
CREATE TABLE cursors (
    name        TEXT PRIMARY KEY,
    position    INTEGER NOT NULL,
    updated_at  REAL NOT NULL
);
