-- Data assets and lineage: one row per asset a succeeded attempt updated (written in the
-- transaction that records the success), what each asset trigger has consumed, and the
-- stale notices already given. No foreign key to runs: an asset's history outlives the
-- runs that retention prunes.
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
