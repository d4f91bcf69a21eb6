-- Orchestrion schema, SQLite dialect. Times are REAL seconds since the epoch (UTC).
-- JSON values are TEXT holding canonical JSON.

CREATE TABLE workflows (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    spec        TEXT NOT NULL,
    source      TEXT,
    created_at  REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX workflows_latest ON workflows (name, created_at);

CREATE TABLE runs (
    id                  TEXT PRIMARY KEY,
    workflow            TEXT NOT NULL,
    version             TEXT NOT NULL,
    state               TEXT NOT NULL,
    params              TEXT NOT NULL,
    priority            INTEGER NOT NULL DEFAULT 0,
    trigger             TEXT NOT NULL DEFAULT 'manual',
    idempotency_key     TEXT UNIQUE,
    parent_task_run_id  INTEGER,
    -- task runs not yet finished: the run completes when this reaches zero (no scan)
    unfinished          INTEGER NOT NULL DEFAULT 0,
    compensated         INTEGER NOT NULL DEFAULT 0,
    created_at          REAL NOT NULL,
    started_at          REAL,
    finished_at         REAL,
    deadline            REAL,
    result              TEXT,
    error               TEXT,
    FOREIGN KEY (workflow, version) REFERENCES workflows (name, version)
);
CREATE INDEX runs_workflow_state ON runs (workflow, state, id);
CREATE INDEX runs_state ON runs (state, id);
CREATE INDEX runs_deadline ON runs (deadline) WHERE deadline IS NOT NULL;
CREATE INDEX runs_parent ON runs (parent_task_run_id) WHERE parent_task_run_id IS NOT NULL;

CREATE TABLE task_runs (
    id                INTEGER PRIMARY KEY,
    run_id            TEXT NOT NULL REFERENCES runs (id),
    task_name         TEXT NOT NULL,
    map_index         INTEGER NOT NULL DEFAULT -1,
    group_id          INTEGER,
    kind              TEXT NOT NULL DEFAULT 'task',
    state             TEXT NOT NULL,
    queue             TEXT NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 0,
    ready_at          REAL NOT NULL DEFAULT 0,
    conc_key          TEXT,
    conc_limit        INTEGER,
    -- upstream bookkeeping, updated by the transaction that finishes each upstream
    waiting           INTEGER NOT NULL DEFAULT 0,
    up_ok             INTEGER NOT NULL DEFAULT 0,
    up_failed         INTEGER NOT NULL DEFAULT 0,
    up_skipped        INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    failures          INTEGER NOT NULL DEFAULT 0,
    lost              INTEGER NOT NULL DEFAULT 0,
    lease_owner       TEXT,
    lease_epoch       INTEGER NOT NULL DEFAULT 0,
    lease_expires_at  REAL,
    item              TEXT,
    result            TEXT,
    error             TEXT,
    started_at        REAL,
    finished_at       REAL,
    UNIQUE (run_id, task_name, map_index)
);
CREATE INDEX task_runs_claim ON task_runs (queue, priority DESC, ready_at, id)
    WHERE state IN ('queued', 'retry_wait');
CREATE INDEX task_runs_lease ON task_runs (lease_expires_at) WHERE state = 'running';
CREATE INDEX task_runs_conc ON task_runs (conc_key) WHERE state = 'running' AND conc_key IS NOT NULL;
CREATE INDEX task_runs_group ON task_runs (group_id, map_index) WHERE group_id IS NOT NULL;
CREATE INDEX task_runs_owner ON task_runs (lease_owner) WHERE state = 'running';

CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    task_run_id  INTEGER NOT NULL REFERENCES task_runs (id),
    run_id       TEXT NOT NULL,
    number       INTEGER NOT NULL,
    epoch        INTEGER NOT NULL,
    worker       TEXT NOT NULL,
    started_at   REAL NOT NULL,
    finished_at  REAL,
    outcome      TEXT,
    error        TEXT,
    error_type   TEXT,
    traceback    TEXT,
    -- one attempt per lease epoch: a fenced worker cannot record a second outcome
    UNIQUE (task_run_id, epoch)
);
CREATE INDEX attempts_run ON attempts (run_id, id);

CREATE TABLE events (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT,
    task_run_id  INTEGER,
    at           REAL NOT NULL,
    kind         TEXT NOT NULL,
    from_state   TEXT,
    to_state     TEXT,
    data         TEXT
);
CREATE INDEX events_run ON events (run_id, id);

CREATE TABLE logs (
    id           INTEGER PRIMARY KEY,
    run_id       TEXT NOT NULL,
    task_run_id  INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    at           REAL NOT NULL,
    stream       TEXT NOT NULL,
    line         TEXT NOT NULL
);
CREATE INDEX logs_run ON logs (run_id, task_run_id, id);

CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    queues        TEXT NOT NULL,
    started_at    REAL NOT NULL,
    heartbeat_at  REAL NOT NULL,
    state         TEXT NOT NULL
);
