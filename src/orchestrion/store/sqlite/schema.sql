-- The whole current schema of an Orchestrion SQLite database, as one file to read.
--
-- An empty database is made from this file, with every migration recorded as applied
-- (database.py, `_create`); an existing one is upgraded by the migrations
-- (store/migrations/sqlite/). tests/contract/test_migrations.py checks that a database
-- built from this file has exactly the catalog of one built by every migration (columns in
-- their physical order: a column a migration added comes last in its table). Change a
-- migration, change this file with it.
--
-- Times are REAL seconds since the epoch (UTC); JSON values are TEXT holding canonical
-- JSON. The states of runs and task runs are those of orchestrion/states.py.

-- The migrations applied, by the migration runner.
CREATE TABLE schema_migrations (version TEXT PRIMARY KEY, applied_at REAL NOT NULL);


-- ============================================================ workflows

-- Every registered version of every workflow; a version's spec never changes.
CREATE TABLE workflows (
    name        TEXT NOT NULL,
    version     TEXT NOT NULL,
    spec        TEXT NOT NULL,
    source      TEXT,
    created_at  REAL NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE INDEX workflows_latest ON workflows (name, created_at);

-- Per-workflow switches that are not part of a version: pausing stops schedules and
-- event triggers from starting runs (manual triggers still work).
CREATE TABLE workflow_flags (
    name        TEXT PRIMARY KEY,
    paused      INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL
);

-- Each workflow's current version: the one that triggers, schedules and `trigger` without a
-- version start. Registering a version (new or known again) or `set-version` makes it
-- current (an event row `workflow.current` records each change).
CREATE TABLE workflow_current (
    name        TEXT PRIMARY KEY,
    version     TEXT NOT NULL,
    -- when this version became current (a schedule new to it fires from then)
    updated_at  REAL NOT NULL,
    FOREIGN KEY (name, version) REFERENCES workflows (name, version)
);

-- The code of workflow versions (`orchestrion.spec.bundle`), content-addressed: a file's
-- content is kept once however many versions contain it, and a version's spec names its
-- bundle by digest (`WorkflowSpec.code`). Rows are written once and never changed.
CREATE TABLE code_blobs (
    digest      TEXT PRIMARY KEY,       -- SHA-256 of the content
    content     BLOB NOT NULL,
    size        INTEGER NOT NULL
);

CREATE TABLE code_bundles (
    digest      TEXT PRIMARY KEY,       -- CodeBundle.digest
    paths       TEXT NOT NULL,          -- JSON list: the folders imports resolve against
    files       TEXT NOT NULL,          -- JSON object: path -> code_blobs.digest
    created_at  REAL NOT NULL
);


-- ============================================================ runs, task runs, attempts

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
    -- retention (0019): 1 if marked "keep": never pruned, nor is its family
    keep                INTEGER NOT NULL DEFAULT 0,
    -- caching (0022): 1 if started with "no cache" (its cached tasks recompute)
    no_cache            INTEGER NOT NULL DEFAULT 0,
    FOREIGN KEY (workflow, version) REFERENCES workflows (name, version)
);
CREATE INDEX runs_workflow_state ON runs (workflow, state, id);
CREATE INDEX runs_state ON runs (state, id);
CREATE INDEX runs_deadline ON runs (deadline) WHERE deadline IS NOT NULL;
CREATE INDEX runs_parent ON runs (parent_task_run_id) WHERE parent_task_run_id IS NOT NULL;
CREATE INDEX runs_workflow_created ON runs (workflow, created_at);

CREATE TABLE task_runs (
    id                INTEGER PRIMARY KEY,
    run_id            TEXT NOT NULL REFERENCES runs (id),
    task_name         TEXT NOT NULL,
    -- -1 for a task that is not an item of a mapped task
    map_index         INTEGER NOT NULL DEFAULT -1,
    -- an item's mapped task (its group row)
    group_id          INTEGER,
    -- task, group (a mapped task's parent), item (one mapped element) or undo
    kind              TEXT NOT NULL DEFAULT 'task',
    state             TEXT NOT NULL,
    queue             TEXT NOT NULL,
    priority          INTEGER NOT NULL DEFAULT 0,
    ready_at          REAL NOT NULL DEFAULT 0,
    -- the task's concurrency limit, counted across runs (workflow:task)
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
    -- the lease: its owner (a worker), a fencing token, and when it expires
    lease_owner       TEXT,
    lease_epoch       INTEGER NOT NULL DEFAULT 0,
    lease_expires_at  REAL,
    item              TEXT,
    result            TEXT,
    error             TEXT,
    started_at        REAL,
    finished_at       REAL,
    -- routing (0006): the worker labels it requires, as canonical JSON text (NULL: none)
    requires          TEXT,
    -- priority ageing (0006): how many times its claim priority was raised for waiting
    aged              INTEGER NOT NULL DEFAULT 0,
    -- slots (0008): its rendered concurrency key and that key's limit (NULL: none)
    slot_key          TEXT,
    slot_limit        INTEGER,
    -- caching (0022): the run and task run whose cached result this one reused
    cache_run_id      TEXT,
    cache_task_run_id INTEGER,
    UNIQUE (run_id, task_name, map_index)
);
-- The claim reads this in claim order: its predicate is the claim guard
-- (the sources of `claim` in states.py).
CREATE INDEX task_runs_claim ON task_runs (queue, priority DESC, ready_at, id)
    WHERE state IN ('queued', 'retry_wait');
CREATE INDEX task_runs_conc ON task_runs (conc_key) WHERE state = 'running' AND conc_key IS NOT NULL;
CREATE INDEX task_runs_group ON task_runs (group_id, map_index) WHERE group_id IS NOT NULL;
CREATE INDEX task_runs_slot_keys ON task_runs (slot_key)
    WHERE state = 'running' AND slot_key IS NOT NULL;
-- (0028) The running set, in one index: the claim's count of a limited queue seeks by its
-- queue; the lease queries (by owner, by expiry) scan it, small on one machine.
CREATE INDEX task_runs_running ON task_runs (queue, lease_owner, lease_expires_at)
    WHERE state = 'running';

CREATE TABLE attempts (
    id           INTEGER PRIMARY KEY,
    task_run_id  INTEGER NOT NULL REFERENCES task_runs (id),
    run_id       TEXT NOT NULL,
    number       INTEGER NOT NULL,
    epoch        INTEGER NOT NULL,
    worker       TEXT NOT NULL,
    started_at   REAL NOT NULL,
    finished_at  REAL,
    -- NULL while running; then succeeded, failed, skipped, waiting, lost, canceled, superseded
    outcome      TEXT,
    error        TEXT,
    error_type   TEXT,
    traceback    TEXT,
    -- one attempt per lease epoch: a fenced worker cannot record a second outcome
    UNIQUE (task_run_id, epoch)
);
CREATE INDEX attempts_run ON attempts (run_id, id);

-- The history: every state change, trigger and user action, in order.
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


-- ============================================================ workers and queues

-- state: running, or dead (its leases were expired for the reaper).
CREATE TABLE workers (
    id            TEXT PRIMARY KEY,
    host          TEXT NOT NULL,
    pid           INTEGER NOT NULL,
    queues        TEXT NOT NULL,
    started_at    REAL NOT NULL,
    heartbeat_at  REAL NOT NULL,
    state         TEXT NOT NULL,
    -- the labels it was started with (0007), what tasks' `requires` match
    labels        TEXT NOT NULL DEFAULT '{}',
    -- how many attempts it runs at once (0015; NULL: a worker from before)
    slots         INTEGER
);

-- Operator limits (0008): queue -> most running task runs at once across all workers. A
-- slot is a running task run with an unexpired lease, counted at claim time.
CREATE TABLE queue_limits (
    queue       TEXT PRIMARY KEY,
    max_running INTEGER NOT NULL CHECK (max_running >= 1),
    updated_at  REAL NOT NULL
);


-- ============================================================ triggers

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
-- state: new, then started (run_id set), skipped (overlap), queued (waiting for the
-- previous run) or failed (the params did not fit; error set).
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

-- Replay keys of signed webhook deliveries (a digest of what the signature covers, under
-- the webhook's name), each kept until its signature would be refused anyway or its window
-- ends: a second delivery of one starts nothing, whatever its unsigned headers say.
CREATE TABLE webhook_seen (
    digest      TEXT PRIMARY KEY,
    -- the event the first delivery recorded (inbox source, event id)
    source      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    expires_at  REAL NOT NULL
);
CREATE INDEX webhook_seen_expires ON webhook_seen (expires_at);

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


-- ============================================================ accounts and secrets

-- bindings: JSON {namespace: role}. auth_epoch is bumped by every password or role change;
-- a session remembers the epoch it was made at and dies when they differ.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    bindings       TEXT NOT NULL,
    disabled       INTEGER NOT NULL DEFAULT 0,
    auth_epoch     INTEGER NOT NULL DEFAULT 0,
    created_at     REAL NOT NULL,
    updated_at     REAL NOT NULL
);

-- Only the SHA-256 of a token is kept; `id` is the token's public id part.
CREATE TABLE api_tokens (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    token_hash     TEXT NOT NULL,
    bindings       TEXT NOT NULL,
    created_by     TEXT,
    created_at     REAL NOT NULL,
    expires_at     REAL,
    revoked_at     REAL
);

-- Only the SHA-256 of a session id is kept, so a copy of the database opens no session.
CREATE TABLE sessions (
    id_hash        TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL REFERENCES users (id),
    csrf           TEXT NOT NULL,
    auth_epoch     INTEGER NOT NULL,
    created_at     REAL NOT NULL,
    expires_at     REAL NOT NULL,
    revoked_at     REAL
);
CREATE INDEX sessions_user ON sessions (user_id);

-- Failed logins (0009), shared by every server on the database, so that servers behind a
-- load balancer limit password guessing together. `key` is a digest of (user name, source
-- address): what was typed as a user name is never stored.
CREATE TABLE login_failures (
    id   INTEGER PRIMARY KEY,
    key  TEXT NOT NULL,
    at   REAL NOT NULL
);
CREATE INDEX login_failures_key_at ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- Append-only: the triggers below refuse every UPDATE, DELETE and overwriting INSERT.
CREATE TABLE audit_log (
    id             INTEGER PRIMARY KEY,
    at             REAL NOT NULL,
    actor          TEXT NOT NULL,
    actor_kind     TEXT NOT NULL,
    action         TEXT NOT NULL,
    object         TEXT NOT NULL,
    namespace      TEXT,
    params         TEXT NOT NULL,
    outcome        TEXT NOT NULL,
    detail         TEXT,
    request_id     TEXT,
    source         TEXT
);
CREATE INDEX audit_actor ON audit_log (actor, id);
CREATE INDEX audit_at ON audit_log (at);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
-- (0019) ... except a row the retention gate lets go (audit_prune_gate, below)
WHEN NOT EXISTS (
    SELECT 1 FROM audit_prune_gate g WHERE OLD.id <= g.up_to_id AND OLD.at < g.before
)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
-- REPLACE on an existing id deletes the old row without firing DELETE triggers: an insert
-- naming an id that is there already is refused (the store lets SQLite pick ids; NEW.id is
-- -1 then).
CREATE TRIGGER audit_log_no_replace BEFORE INSERT ON audit_log
WHEN EXISTS (SELECT 1 FROM audit_log WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;

-- Secrets, sealed with AES-256-GCM by orchestrion.auth.secret_box: the store never sees a
-- plaintext. The associated data binds each ciphertext to (namespace, name), so a row
-- copied under another name fails to open. key_id says which master key sealed it.
CREATE TABLE secrets (
    namespace   TEXT NOT NULL,
    name        TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    nonce       BLOB NOT NULL,
    ciphertext  BLOB NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);


-- ============================================================ metrics (0015)

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

-- Connections (issues 14, 15): named per namespace, to a broker (used by `publish` tasks
-- and broker triggers) or a database (used by `sql` tasks). No credential is stored here: `password_secret` names a secret of the same
-- namespace (the `secrets` table, sealed), opened by a worker or consumer when it connects.
-- `tls` is a JSON object of TLS options (enabled, ca_file, cert_file, key_file, insecure).
CREATE TABLE connections (
    namespace        TEXT NOT NULL,
    name             TEXT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('redis', 'rabbitmq', 'nats', 'mqtt',
                                                   'postgres', 'mysql', 'sqlite')),
    url              TEXT NOT NULL,
    username         TEXT,
    password_secret  TEXT,
    tls              TEXT NOT NULL DEFAULT '{}',
    created_at       REAL NOT NULL,
    updated_at       REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- The state of each broker trigger's consumer (issue 14), for the consumers page and API.
-- Written by the scheduler running the consumer about once a second while it runs, and
-- only by the holder of the trigger's newest lease epoch (an older holder's late write
-- changes nothing). Telemetry like the workers' heartbeats: no event row per write; the
-- messages themselves are recorded in the inbox (source 'broker:' || trigger_key), which
-- is where the counts of received and dead-lettered messages are read from.
CREATE TABLE broker_consumers (
    trigger_key      TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    connection       TEXT NOT NULL,
    destination      TEXT NOT NULL,
    holder           TEXT NOT NULL,
    epoch            INTEGER NOT NULL,
    -- running | held (at its in-flight limit) | error | stopped
    state            TEXT NOT NULL,
    -- messages waiting at the broker, where it says (NULL: unknown)
    lag              INTEGER,
    last_message_at  REAL,
    error            TEXT,
    updated_at       REAL NOT NULL
);


-- ============================================================ retention (0019)

-- Per namespace ('*': every namespace without a row of its own); NULL: that rule is off.
-- runs_days: finished runs older than this go, with all their rows; logs_days: log lines
-- of finished runs older than this go; keep_last: the newest N runs of each workflow stay
-- whatever their age; audit_days: audit records older than this are exported to a
-- JSON-lines file in audit_export_dir, then deleted.
CREATE TABLE retention_policies (
    namespace         TEXT PRIMARY KEY,
    runs_days         REAL CHECK (runs_days > 0),
    logs_days         REAL CHECK (logs_days > 0),
    keep_last         INTEGER CHECK (keep_last >= 0),
    audit_days        REAL CHECK (audit_days > 0),
    audit_export_dir  TEXT,
    updated_at        REAL NOT NULL,
    CHECK (audit_days IS NULL OR audit_export_dir IS NOT NULL)
);

-- The audit log's pruning gate. The only DELETE the audit log accepts is of a row at or
-- below `up_to_id` and older than `before` while this one row exists; retention inserts
-- it, deletes the rows it has just exported, and deletes it again, in one transaction.
-- Nothing else writes this table (docs/security.md, "The audit log").
CREATE TABLE audit_prune_gate (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    up_to_id  INTEGER NOT NULL,
    before    REAL NOT NULL
);

-- Notifications and SLAs (issue 16, part 3).
--
-- A channel is where messages go: a generic webhook (signed with HMAC-SHA256), a
-- Slack-compatible incoming webhook, or email over SMTP. `config` is a JSON object of what
-- is not secret (a webhook's URL, an SMTP host, port, sender and recipients); `secret`
-- names a secret of the same namespace (`secrets` table, sealed) holding what is: the HMAC
-- key, the Slack URL (its path is the credential), the SMTP password.
CREATE TABLE notification_channels (
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'smtp')),
    config       TEXT NOT NULL DEFAULT '{}',
    secret       TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- A rule: which workflows of its namespace (a name pattern, tags they must all carry) on
-- which events go to which channel (same namespace), with an optional message template
-- (the sandboxed {{ expression }} language).
CREATE TABLE notification_rules (
    namespace    TEXT NOT NULL,
    name         TEXT NOT NULL,
    channel      TEXT NOT NULL,
    workflows    TEXT NOT NULL DEFAULT '*',
    tags         TEXT NOT NULL DEFAULT '[]',
    events       TEXT NOT NULL,
    template     TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL,
    PRIMARY KEY (namespace, name)
);

-- The outbox: one row per message to send, written by the scheduler's `notifications`
-- duty and sent by it with retries and back-off. `dedupe_key` (rule, event, subject)
-- makes a re-read of the history or a second scheduler write nothing twice.
-- state: pending | sent | failed (gave up after its last attempt).
CREATE TABLE notification_deliveries (
    id               INTEGER PRIMARY KEY,
    dedupe_key       TEXT NOT NULL UNIQUE,
    namespace        TEXT NOT NULL,
    rule             TEXT NOT NULL,
    channel          TEXT NOT NULL,
    event            TEXT NOT NULL,
    workflow         TEXT,
    run_id           TEXT,
    message          TEXT NOT NULL,
    payload          TEXT NOT NULL,
    state            TEXT NOT NULL DEFAULT 'pending',
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  REAL NOT NULL,
    last_error       TEXT,
    created_at       REAL NOT NULL,
    sent_at          REAL
);
CREATE INDEX notification_deliveries_due ON notification_deliveries (state, next_attempt_at);

-- Objects in the result store that hold a task run's result (its result column holds a
-- small reference to it); also those of superseded attempts, so that retention deletes
-- every object a run's attempts wrote.
CREATE TABLE result_objects (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    task_run_id INTEGER NOT NULL,
    uri         TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    created_at  REAL NOT NULL
);
CREATE INDEX result_objects_run ON result_objects (run_id);
CREATE INDEX result_objects_task_run ON result_objects (task_run_id);

-- What attempts published: kind markdown, table, link or file; body holds the text, the
-- rows as JSON or the URL; a file's object is at uri.
CREATE TABLE artifacts (
    id          INTEGER PRIMARY KEY,
    run_id      TEXT NOT NULL,
    task_run_id INTEGER NOT NULL,
    task_name   TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('markdown', 'table', 'link', 'file')),
    title       TEXT,
    body        TEXT,
    uri         TEXT,
    size        INTEGER,
    sha256      TEXT,
    media_type  TEXT,
    created_at  REAL NOT NULL
);
CREATE INDEX artifacts_run ON artifacts (run_id, id);

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
    task_run_id  INTEGER NOT NULL,
    created_at   REAL NOT NULL,
    expires_at   REAL,
    PRIMARY KEY (namespace, workflow, task_name, cache_key)
);
CREATE INDEX task_cache_expires ON task_cache (expires_at);
CREATE INDEX task_cache_run ON task_cache (run_id);

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

-- Data assets (0024): events recorded with the success that made them, what each asset
-- trigger consumed (its primary key is the compare-and-set), stale notices given.
-- part: the partition's name, '' for an unpartitioned asset (part of a key: never NULL).
CREATE TABLE asset_events (
    id           INTEGER PRIMARY KEY,
    namespace    TEXT NOT NULL,
    asset        TEXT NOT NULL,
    part         TEXT NOT NULL DEFAULT '',
    workflow     TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    task_name    TEXT NOT NULL,
    task_run_id  INTEGER NOT NULL,
    attempt      INTEGER NOT NULL,
    metadata     TEXT,
    created_at   REAL NOT NULL,
    UNIQUE (task_run_id, asset, part)
);
CREATE INDEX asset_events_asset ON asset_events (namespace, asset, id);

-- An asset trigger's consumed events: the primary key is its compare-and-set. Two
-- schedulers that saw the same events both insert; the second finds a key taken and rolls
-- back the run it was starting, so one set of events starts one run.
CREATE TABLE asset_consumed (
    trigger_key  TEXT NOT NULL,
    event_id     INTEGER NOT NULL,
    run_id       TEXT,
    PRIMARY KEY (trigger_key, event_id)
);

-- A stale asset's notice, once per (asset, newest event when it went stale; 0: none yet).
CREATE TABLE asset_stale (
    namespace   TEXT NOT NULL,
    asset       TEXT NOT NULL,
    last_event  INTEGER NOT NULL,
    stale_at    REAL NOT NULL,
    PRIMARY KEY (namespace, asset, last_event)
);

-- Declarative projects and Git sync (0026).
-- project_applies: one row per `orchestrion apply` (or sync) of a namespace's project: who,
-- when, from which commit, what it changed (summary: JSON counts of create/update/delete),
-- and how it ended (a failed apply changed nothing: it was validated first, or undone).
CREATE TABLE project_applies (
    id           INTEGER PRIMARY KEY,
    namespace    TEXT NOT NULL,
    project      TEXT NOT NULL,
    actor        TEXT NOT NULL,
    commit_sha   TEXT,
    source       TEXT,
    outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'unchanged', 'failed')),
    summary      TEXT NOT NULL,
    error        TEXT,
    created_at   REAL NOT NULL
);
CREATE INDEX project_applies_namespace ON project_applies (namespace, id);

-- The commit a workflow version was first deployed from (Git sync, or `apply --commit`).
-- A version is content-addressed: a later commit with the same content keeps the first.
CREATE TABLE workflow_commits (
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    commit_sha   TEXT NOT NULL,
    created_at   REAL NOT NULL,
    PRIMARY KEY (name, version)
);

-- Git repositories the ``sync`` duty follows: a branch or a tag, the project file in it,
-- and the secret (by reference, never its value) holding an HTTPS token or an SSH key.
CREATE TABLE sync_sources (
    name         TEXT PRIMARY KEY,
    repo         TEXT NOT NULL,
    ref_kind     TEXT NOT NULL CHECK (ref_kind IN ('branch', 'tag')),
    ref          TEXT NOT NULL,
    project_path TEXT NOT NULL,
    secret       TEXT,
    created_at   REAL NOT NULL,
    updated_at   REAL NOT NULL
);

-- What each look at a source found: the commit, and whether it was applied, needed
-- nothing, or failed (validation or apply; the error names why). The duty skips a commit
-- it has a row for, so a bad commit is reported once and the next good one applied.
CREATE TABLE sync_results (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    commit_sha   TEXT NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('applied', 'unchanged', 'failed')),
    error        TEXT,
    summary      TEXT NOT NULL,
    created_at   REAL NOT NULL
);
CREATE INDEX sync_results_source ON sync_results (source, id);

-- Template libraries held by the server (0027, docs/templates.md): a (name, version)
-- is pushed once and never changes. body: the library as JSON.
CREATE TABLE template_libraries (
    name         TEXT NOT NULL,
    version      INTEGER NOT NULL,
    digest       TEXT NOT NULL,
    description  TEXT NOT NULL DEFAULT '',
    body         TEXT NOT NULL,
    pushed_by    TEXT,
    pushed_at    REAL NOT NULL,
    PRIMARY KEY (name, version)
);

-- Admission policies (issue 19): one row per version of a policy. The newest version of
-- a name is in force unless it records a deletion (deleted = 1, keeping the last
-- document), so the history is never rewritten. document: the policy as JSON text;
-- digest: SHA-256 of it, so that writing an unchanged policy writes nothing.
CREATE TABLE policies (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    document    TEXT NOT NULL,
    digest      TEXT NOT NULL,
    deleted     INTEGER NOT NULL DEFAULT 0,
    created_at  REAL NOT NULL,
    created_by  TEXT,
    PRIMARY KEY (name, version)
);
